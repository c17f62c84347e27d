"""One visitor's ChatKit requests at once, through a real server whose units of work commit
(``tests.races``): what counts what an end user holds before adding to it holds the end
user meanwhile, so no more gets in than the rule allows and nothing within it is refused."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import httpx2
import pytest
from chatkit.types import (
    AssistantMessageItem,
    ClientToolCallItem,
    ErrorEvent,
    NoticeEvent,
    ThreadStreamEvent,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.chat.attachments import MAX_UNSENT
from kithost.models import ChatAttachment, ChatItem, ChatThread, Membership, Role, Tenant
from kithost.models.base import Base
from kithost.users.service import create_user
from tests.chat.helpers import (
    ATTACHMENTS,
    alice_of,
    answering,
    assert_problem,
    chat_widget,
    client_tool,
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
)
from tests.factories import PASSWORD, client_token, login
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI
from tests.races import RacingApp, at_once

__all__ = ["http", "racing", "sent_tasks", "tenant_checks"]  # the fixtures: chat races'


async def test_attachments_created_at_once_stop_at_the_cap(
    racing: RacingApp, http: httpx2.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    widget, _ = await chat_widget(
        racing, fake_openai, chatkit={"composer": {"attachments": ATTACHMENTS}}
    )
    alice = await alice_of(racing, http, widget)
    await racing.warm(MAX_UNSENT)

    async def create(n: int) -> httpx2.Response:
        return await alice.post(
            "attachments.create", name=f"{n}.png", size=4, mime_type="image/png"
        )

    responses = await at_once(2 * MAX_UNSENT, create)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * MAX_UNSENT + [422] * MAX_UNSENT, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 422):
        assert refused.json()["code"] == "too_many_attachments"
    async with racing.arranging() as session:
        held = await session.scalar(
            select(func.count())
            .select_from(ChatAttachment)
            .where(ChatAttachment.widget_id == widget.id)
        )
    assert held == MAX_UNSENT


@pytest.mark.parametrize("deleted_when", [shown, answering], ids=["before", "after"])
async def test_a_chat_whose_widget_is_deleted_meanwhile_says_it_is_no_longer_available(
    racing: RacingApp,
    http: httpx2.AsyncClient,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    deleted_when: Callable[[list[ThreadStreamEvent]], bool],
) -> None:
    """The widget is deleted (with its threads) while the model answers, before the first
    word (the visitor's message is not written yet) or after it; what the response writes
    next finds the widget gone: it ends with ChatKit's error saying the chat is no longer
    available, no retry offered (it could only fail), and nothing is logged as an error
    (it was a foreign key violation, the visitor invited to retry)."""
    widget, tenant = await chat_widget(racing, fake_openai)
    alice = await alice_of(racing, http, widget)
    async with racing.arranging() as session:
        editor = await client_token(racing.app, session, tenant, [Scope.widgets_write])
    fake_openai.hold_stream(after=0 if deleted_when is shown else 1)
    body = {"type": "threads.create", "params": {"input": message("Tell me a story")}}
    seen, deleted = "", None
    with caplog.at_level(logging.INFO):
        async with http.stream("POST", alice.url, json=body, headers=alice.headers()) as response:
            async for chunk in response.aiter_text():
                seen += chunk
                if deleted is None and deleted_when(decode(seen)):
                    deleted = await http.delete(
                        f"/api/v1/tenants/{tenant.slug}/widgets/{widget.id}",
                        headers=editor.headers,
                    )
                    fake_openai.release()

    ends_unavailable(seen, deleted)
    assert not errors_logged(caplog)
    assert "chat.widget_gone" in caplog.text
    async with racing.arranging() as session:
        left = await session.scalar(
            select(func.count()).select_from(ChatThread).where(ChatThread.widget_id == widget.id)
        )
    assert left == 0


async def test_a_chat_whose_tenant_is_deleted_meanwhile_ends_at_once(
    racing: RacingApp,
    http: httpx2.AsyncClient,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its owner deletes the tenant while the model is in the middle of an answer (held,
    its first word out: the visitor's message and thread are written): the answer ends
    within seconds (``answers.CHECK_SECONDS``), the model still holding, with ChatKit's
    error saying the chat is no longer available, no retry offered; no row of the tenant is
    left, nor written afterwards. Nothing is logged as an error."""
    widget, tenant = await chat_widget(racing, fake_openai)
    alice = await alice_of(racing, http, widget)
    async with racing.arranging() as session:
        created = await create_user(session, CLI, racing.email("owner"), password=PASSWORD)
        session.add(Membership(tenant_id=tenant.id, user_id=created.user.id, role=Role.owner))
        owner = await login(racing.app, session, created.user)
    fake_openai.hold_stream(after=1)
    body = {"type": "threads.create", "params": {"input": message("Tell me a story")}}
    seen, deleted = "", None
    try:
        with caplog.at_level(logging.INFO):
            async with (
                asyncio.timeout(8),  # the model's own timeout is 10 s
                http.stream("POST", alice.url, json=body, headers=alice.headers()) as response,
            ):
                async for chunk in response.aiter_text():
                    seen += chunk
                    if deleted is None and deltas(decode(seen)):
                        deleted = await http.delete(
                            f"/api/v1/tenants/{tenant.slug}",
                            params={"confirm": tenant.slug},
                            headers=owner.headers,
                        )
    finally:
        fake_openai.release()

    assert not done_items(ends_unavailable(seen, deleted), AssistantMessageItem)
    assert not errors_logged(caplog)
    assert "chat.tenant_gone" in caplog.text
    await asyncio.sleep(0.5)  # time for anything still running to write: nothing does
    async with racing.arranging() as session:
        assert await rows_of(session, tenant) == {}
        assert await session.get(Tenant, tenant.id) is None


def ends_unavailable(seen: str, deleted: httpx2.Response | None) -> list[ThreadStreamEvent]:
    """The events ``seen``, once the deletion answered 204 and they end with ChatKit's error
    saying the chat is no longer available (the only error; no retry offered)."""
    assert deleted is not None
    assert deleted.status_code == 204, deleted.text
    events = decode(seen)
    [error] = [e for e in events if isinstance(e, ErrorEvent)]
    assert (error.message, error.allow_retry) == ("This chat is no longer available.", False)
    assert events[-1] == error
    return events


async def rows_of(session: AsyncSession, tenant: Tenant) -> dict[str, int]:
    """How many rows of each table hold ``tenant``'s id (the tables with none left out)."""
    counts = {}
    for table in Base.metadata.sorted_tables:
        if "tenant_id" in table.c:
            query = select(func.count()).select_from(table).where(table.c.tenant_id == tenant.id)
            if found := await session.scalar(query):
                counts[table.name] = found
    return counts


async def test_messages_sent_at_once_are_answered_up_to_the_quota(
    racing: RacingApp, http: httpx2.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    """A visitor who has sent nothing sends ten messages at once to a widget allowing three
    a day: three are answered, the others get the quota's notice (each counted the others,
    and none was answered)."""
    quota, at_once_count = 3, 10
    widget, _ = await chat_widget(racing, fake_openai, agent={"messages_per_user_per_day": quota})
    alice = await alice_of(racing, http, widget)
    await racing.warm(at_once_count)

    async def send(n: int) -> list[ThreadStreamEvent]:
        return await alice.send(f"Question {n}")

    sent = await at_once(at_once_count, send)

    answered = [events for events in sent if done_items(events, AssistantMessageItem)]
    refused = [events for events in sent if any(isinstance(e, NoticeEvent) for e in events)]
    assert (len(answered), len(refused)) == (quota, at_once_count - quota)
    async with racing.arranging() as session:
        kept = await session.scalar(
            select(func.count())
            .select_from(ChatItem)
            .where(ChatItem.widget_id == widget.id, ChatItem.kind == "user_message")
        )
    assert kept == quota
    refused_again = await alice.send("One more")
    assert any(isinstance(e, NoticeEvent) for e in refused_again)


async def test_widget_actions_sent_at_once_are_answered_up_to_the_quota(
    racing: RacingApp, http: httpx2.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    """A widget action the agent answers counts as a message: of eight sent at once after a
    first message, within a quota of four, three are answered, and five get the notice."""
    quota, at_once_count = 4, 8
    widget, _ = await chat_widget(racing, fake_openai, agent={"messages_per_user_per_day": quota})
    alice = await alice_of(racing, http, widget)
    thread_id = thread_of(await alice.send("Where is my order?"))
    await racing.warm(at_once_count)

    async def act(n: int) -> list[ThreadStreamEvent]:
        action = {"type": "order.track", "payload": {"n": n}}
        return await alice.stream(
            "threads.custom_action", thread_id=thread_id, item_id=None, action=action
        )

    sent = await at_once(at_once_count, act)

    answered = [events for events in sent if done_items(events, AssistantMessageItem)]
    refused = [events for events in sent if any(isinstance(e, NoticeEvent) for e in events)]
    assert (len(answered), len(refused)) == (quota - 1, at_once_count - quota + 1)


async def test_outputs_sent_at_once_for_one_call_are_taken_once(
    racing: RacingApp, http: httpx2.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    """The page's handler answers a client tool's call four times at once (a double click,
    a retried request): one output completes the call and is answered, the others are 409
    ``no_pending_tool_call``, and the model is asked once."""
    at_once_count = 4
    widget, _ = await chat_widget(racing, fake_openai, agent={"tools": [client_tool()]})
    alice = await alice_of(racing, http, widget)
    fake_openai.call_function("get_cart", {})
    first = await alice.send("What is in my cart?")
    thread_id = thread_of(first)
    assert done_items(first, ClientToolCallItem)
    await racing.warm(at_once_count)

    async def answer(n: int) -> httpx2.Response:
        return await alice.post(
            "threads.add_client_tool_output", thread_id=thread_id, result={"n": n}
        )

    responses = await at_once(at_once_count, answer)

    taken = [r for r in responses if r.status_code == 200]
    assert len(taken) == 1, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code != 200):
        assert_problem(refused, 409, "no_pending_tool_call")
    assert "".join(deltas(decode(taken[0].text))) == DEFAULT_REPLY_TEXT
    assert len(fake_openai.function_outputs) == 1
    listed = await alice.call("items.list", thread_id=thread_id, order="asc")
    kinds = [(i["type"], i.get("output")) for i in listed["data"]]
    assert kinds == [
        ("user_message", None),
        ("client_tool_call", json.loads(fake_openai.function_outputs[0])),
        ("assistant_message", None),
    ]
