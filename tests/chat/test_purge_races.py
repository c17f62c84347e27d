"""Retention's purge of idle conversations while their visitor writes to one, through a real
server whose units of work commit (``tests.races``): the purge takes a thread whole, locked
from the moment it chooses it, or leaves it whole; a message meeting a thread deleted meanwhile
ends with ChatKit's error saying the chat is no longer available (a stream) or 404
``thread_not_found`` (before one), and leaves no row of it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

import httpx2
import pytest
from chatkit.types import AssistantMessageItem, ErrorEvent, ThreadStreamEvent
from sqlalchemy import Executable, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.retention import service as retention
from kithost.chat.attachments import UNSENT_LIFETIME
from kithost.db import session_scope
from kithost.models import (
    ChatAttachment,
    ChatItem,
    ChatThread,
    Tenant,
    WebhookDelivery,
    WebhookEndpoint,
)
from kithost.models.base import utcnow
from tests.chat.helpers import (
    ATTACHMENTS,
    Visitor,
    alice_of,
    answering,
    assert_problem,
    chat_widget,
    create,
    decode,
    deltas,
    done_items,
    errors_logged,
    http,
    message,
    racing,
    sent_tasks,
    shown,
    tenant_checks,
    thread_of,
    upload,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.races import RacingApp, ended_or_waiting

__all__ = ["http", "racing", "sent_tasks", "tenant_checks"]  # the fixtures: chat races'

T = TypeVar("T")
RETENTION_DAYS = 30
IDLE_HOURS = 24 * (RETENTION_DAYS + 10)
"""How long ago the conversations the purge is to take were last active."""
DELETE_BLOBS = "kithost.chat.delete_blobs"
HISTORY = ["user_message", "assistant_message"]
"""The kinds of the items of an idle conversation (:func:`idle_conversation`)."""


async def idle_conversation(racing: RacingApp, alice: Visitor) -> str:
    """A conversation of Alice's (a question, its answer), idle past the tenant's retention
    since."""
    thread_id = thread_of(await alice.send("Where is my order?"))
    idle_since = utcnow() - timedelta(hours=IDLE_HOURS)
    async with racing.arranging() as session:
        await session.execute(
            update(ChatThread).where(ChatThread.id == thread_id).values(updated_at=idle_since)
        )
    return thread_id


async def purge(racing: RacingApp, tenant: Tenant) -> dict[str, int]:
    """The hourly purge of ``tenant``, as the sweep runs it (a unit of work of its own)."""
    async with session_scope(racing.app.state.sessionmaker, tenant=tenant.id) as session:
        return await retention.purge_expired(session, tenant.id, RETENTION_DAYS)


async def held(
    racing: RacingApp,
    tenant: Tenant,
    lock: Executable,
    held_at: str,
    writing: Callable[[], Coroutine[Any, Any, T]],
    written_at: str,
) -> tuple[dict[str, int], T]:
    """The tenant's purge held at ``held_at`` by the rows ``lock`` locks, the visitor's
    request started meanwhile and run as far as it goes (``written_at``: where it may wait
    for the purge), then the purge let go: what each answered."""
    async with racing.arranging() as session:
        await session.execute(lock)
        purged = asyncio.create_task(purge(racing, tenant))
        await ended_or_waiting(racing, purged, f"{held_at}%")
        assert not purged.done(), purged.result()
        written = asyncio.create_task(writing())
        await ended_or_waiting(racing, written, f"{written_at}%")
    return await purged, await written


async def rows_of(session: AsyncSession, thread_id: str) -> tuple[int, list[str]]:
    """How many threads of that id there are (0 or 1), and the texts of its items' kinds."""
    threads = await session.scalar(
        select(func.count()).select_from(ChatThread).where(ChatThread.id == thread_id)
    )
    kinds = await session.scalars(
        select(ChatItem.kind).where(ChatItem.thread_id == thread_id).order_by(ChatItem.created_at)
    )
    return threads or 0, list(kinds)


def ends_unavailable(seen: str) -> None:
    """The events ``seen`` end with ChatKit's error saying the chat is no longer available
    (the only error; no retry offered: it could only fail)."""
    events = decode(seen)
    [error] = [e for e in events if isinstance(e, ErrorEvent)]
    assert (error.message, error.allow_retry) == ("This chat is no longer available.", False)
    assert events[-1] == error


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = errors_logged(caplog)
    assert not errors, [r.getMessage() for r in errors]


async def test_a_message_to_a_thread_the_purge_has_chosen_waits_and_finds_it_deleted_whole(
    racing: RacingApp,
    http: httpx2.AsyncClient,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The purge has chosen Alice's idle conversation and not yet deleted its items (held
    there) when she writes to it again: her message waits for the purge, which deletes the
    conversation whole, and her answer ends with the chat no longer available. The purge
    chose the thread, deleted the items it had seen, and her message, written meanwhile,
    made the thread active again: the thread outlived the purge without its history."""
    if racing.app.state.engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    widget, tenant = await chat_widget(racing, fake_openai)
    alice = await alice_of(racing, http, widget)
    thread = await idle_conversation(racing, alice)

    history = select(ChatItem.id).where(ChatItem.thread_id == thread).with_for_update()
    with caplog.at_level(logging.INFO):
        removed, sent = await held(
            racing,
            tenant,
            history,
            "DELETE FROM chat_items",
            lambda: alice.post("threads.add_user_message", thread_id=thread, input=message("Hi")),
            "UPDATE chat_threads",
        )

    assert removed["chat"] == 1 + len(HISTORY)
    assert sent.status_code == 200, sent.text
    ends_unavailable(sent.text)
    no_errors_logged(caplog)
    assert "chat.thread_gone" in caplog.text
    async with racing.arranging() as session:
        assert await rows_of(session, thread) == (0, [])


@pytest.mark.parametrize("purged_when", [shown, answering], ids=["before", "after"])
async def test_a_message_to_an_idle_thread_purged_while_the_model_answers(
    racing: RacingApp,
    http: httpx2.AsyncClient,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    purged_when: Callable[[list[ThreadStreamEvent]], bool],
) -> None:
    """Alice writes to her idle conversation and the purge runs while the model answers:
    before its first word (her message, written behind it, is not yet) the purge deletes the
    conversation, and the answer ends with the chat no longer available, nothing of it
    written and nothing logged as an error (it ended with a retry offered that could only
    fail); after it (her message is written: the conversation is active) the purge leaves
    it whole and the answer is kept."""
    widget, tenant = await chat_widget(racing, fake_openai)
    alice = await alice_of(racing, http, widget)
    thread = await idle_conversation(racing, alice)
    fake_openai.hold_stream(after=0 if purged_when is shown else 1)
    body = {
        "type": "threads.add_user_message",
        "params": {"thread_id": thread, "input": message("Has it arrived?")},
    }
    seen, removed = "", None
    try:
        with caplog.at_level(logging.INFO):
            async with http.stream(
                "POST", alice.url, json=body, headers=alice.headers()
            ) as response:
                async for chunk in response.aiter_text():
                    seen += chunk
                    if removed is None and purged_when(decode(seen)):
                        removed = await purge(racing, tenant)
                        fake_openai.release()
    finally:
        fake_openai.release()

    no_errors_logged(caplog)
    assert removed is not None
    async with racing.arranging() as session:
        left = await rows_of(session, thread)
    if purged_when is shown:
        assert removed["chat"] == 1 + len(HISTORY)
        ends_unavailable(seen)
        assert left == (0, [])
    else:
        assert removed["chat"] == 0
        assert done_items(decode(seen), AssistantMessageItem)
        assert "".join(deltas(decode(seen)))
        assert left == (1, HISTORY * 2)


async def test_a_message_with_an_attachment_to_a_thread_being_purged_is_404(
    racing: RacingApp,
    http: httpx2.AsyncClient,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The purge has deleted Alice's idle conversation and not yet committed (held at its
    webhook deliveries) when she sends a message carrying an attachment to it: binding the
    attachment waits for the purge, then finds the thread gone, 404 ``thread_not_found``
    (it was the foreign key's violation, a 500); the attachment stays hers, carried by no
    message, and nothing of the thread is left."""
    if racing.app.state.engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    widget, tenant = await chat_widget(
        racing, fake_openai, chatkit={"composer": {"attachments": ATTACHMENTS}}
    )
    alice = await alice_of(racing, http, widget)
    thread = await idle_conversation(racing, alice)
    async with racing.arranging() as session:
        delivery = await recent_delivery(racing, session, tenant, thread)
    attachment = await create(alice)
    assert (await upload(http, attachment)).status_code == 200

    about_it = select(WebhookDelivery.id).where(WebhookDelivery.id == delivery).with_for_update()
    with caplog.at_level(logging.INFO):
        removed, sent = await held(
            racing,
            tenant,
            about_it,
            "DELETE FROM webhook_deliveries",
            lambda: send_with(alice, thread, attachment["id"]),
            "UPDATE chat_attachments",
        )

    assert removed["chat"] == 1 + len(HISTORY)
    assert_problem(sent, 404, "thread_not_found")
    no_errors_logged(caplog)
    async with racing.arranging() as session:
        assert await rows_of(session, thread) == (0, [])
        kept = await session.get_one(ChatAttachment, attachment["id"])
        assert kept.thread_id is None


async def recent_delivery(
    racing: RacingApp, session: AsyncSession, tenant: Tenant, thread_id: str
) -> uuid.UUID:
    """The id of a delivery about the thread, made now (the purge of old deliveries leaves
    it: it goes with its thread)."""
    hook = WebhookEndpoint(
        tenant_id=tenant.id,
        url="https://hooks.example.com/r",
        events=["conversation.message"],
        secret=racing.app.state.secret_box.encrypt("whsec_x"),
    )
    session.add(hook)
    await session.flush()
    delivery = WebhookDelivery(
        tenant_id=tenant.id,
        endpoint_id=hook.id,
        event_id="msg_recent",
        event_type="conversation.message",
        payload={"type": "conversation.message", "data": {"thread_id": thread_id}},
        thread_id=thread_id,
    )
    session.add(delivery)
    await session.flush()
    return delivery.id


async def send_with(alice: Visitor, thread_id: str, attachment_id: str) -> httpx2.Response:
    return await alice.post(
        "threads.add_user_message",
        thread_id=thread_id,
        input={**message("Here is the receipt"), "attachments": [attachment_id]},
    )


async def test_an_attachment_sent_while_the_purge_deletes_unsent_ones_keeps_its_bytes(
    racing: RacingApp,
    http: httpx2.AsyncClient,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alice's attachment, unsent for longer than the purge keeps one, is sent with a
    message (its unit of work binding it to the thread, not committed yet) while the purge
    deletes unsent attachments: the purge leaves it, and its bytes, to the message. The
    purge took the keys of the unsent attachments it saw, then deleted those still unsent:
    the bytes of one a message had taken meanwhile were deleted under it."""
    if racing.app.state.engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    widget, tenant = await chat_widget(
        racing, fake_openai, chatkit={"composer": {"attachments": ATTACHMENTS}}
    )
    alice = await alice_of(racing, http, widget)
    thread = thread_of(await alice.send("Where is my order?"))
    attachment = await create(alice)
    assert (await upload(http, attachment)).status_code == 200
    mine = ChatAttachment.id == attachment["id"]
    async with racing.arranging() as session:
        old = utcnow() - UNSENT_LIFETIME - timedelta(hours=1)
        await session.execute(update(ChatAttachment).where(mine).values(created_at=old))
    sent: list[tuple[str, list[Any]]] = []
    monkeypatch.setattr(
        racing.app.state.celery,
        "send_task",
        lambda name, args, **_: sent.append((name, list(args))),
    )

    async with racing.arranging() as session:
        await session.execute(update(ChatAttachment).where(mine).values(thread_id=thread))
        purged = asyncio.create_task(purge(racing, tenant))
        await ended_or_waiting(racing, purged, "DELETE FROM chat_attachments%")
        assert not purged.done(), purged.result()
    removed = await purged

    assert removed["chat"] == 0
    deleted_bytes = [key for name, args in sent if name == DELETE_BLOBS for key in args[1]]
    assert deleted_bytes == []
    async with racing.arranging() as session:
        kept = await session.get_one(ChatAttachment, attachment["id"])
    assert kept.thread_id == thread
