"""``messages_per_user_per_day``: every request that makes the agent answer counts as a
message — a user message, a retry, a widget action the agent answers, a client tool's
output — and over the quota each gets the quota's notice instead of the model. What it
counted stays counted when the thread goes (``models.ChatQuotaUse``)."""

from __future__ import annotations

from typing import Any

import httpx2
from chatkit.types import ClientToolCallItem, NoticeEvent, ThreadStreamEvent, UserMessageItem
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat import service
from kithost.models import ChatQuotaUse, Widget
from tests.chat.helpers import (
    BOB,
    Visitor,
    assert_problem,
    chat_config,
    client_tool,
    deltas,
    done_items,
    make_chat_widget,
    model_requests,
    thread_of,
    visitor,
)
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI

FORWARDED = {"type": "order.track", "payload": {"order": "A-1"}}
"""A widget action the config does not map: the loader forwards it, the agent answers."""


async def quota_widget(
    db: AsyncSession, app: FastAPI, fake: FakeOpenAI, quota: int, **agent: Any
) -> Widget:
    config = chat_config(fake, agent={"messages_per_user_per_day": quota, **agent})
    return await make_chat_widget(db, app, fake, config)


def answered(events: list[ThreadStreamEvent]) -> bool:
    return "".join(deltas(events)) == DEFAULT_REPLY_TEXT


def refused(events: list[ThreadStreamEvent]) -> bool:
    notices = [e for e in events if isinstance(e, NoticeEvent)]
    return [n.title for n in notices] == ["Message limit reached"] and not deltas(events)


async def act(alice: Visitor, thread_id: str) -> list[ThreadStreamEvent]:
    return await alice.stream(
        "threads.custom_action", thread_id=thread_id, item_id=None, action=FORWARDED
    )


async def retry(alice: Visitor, thread_id: str, item_id: str) -> list[ThreadStreamEvent]:
    return await alice.stream("threads.retry_after_item", thread_id=thread_id, item_id=item_id)


async def items(alice: Visitor, thread_id: str) -> list[tuple[str, str]]:
    listed = await alice.call("items.list", thread_id=thread_id, order="asc", limit=50)
    return [(i["type"], i["id"]) for i in listed["data"]]


async def test_messages_retries_and_actions_all_count_and_are_refused_over_the_quota(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await quota_widget(db, app, fake_openai, 3)
    alice = await visitor(http, app, db, widget)
    first = await alice.send("Where is my order?")
    thread_id = thread_of(first)
    [question] = done_items(first, UserMessageItem)

    assert answered(await act(alice, thread_id))  # 2
    assert answered(await retry(alice, thread_id, question.id))  # 3
    kept = await items(alice, thread_id)
    calls = len(model_requests(fake_openai))

    assert refused(await act(alice, thread_id))
    assert refused(await retry(alice, thread_id, question.id))
    assert refused(await alice.send("And now?", thread_id))
    assert len(model_requests(fake_openai)) == calls
    assert await items(alice, thread_id) == kept  # the refused retry deleted no answer
    bob = await visitor(http, app, db, widget, end_user=BOB)
    assert answered(await bob.send("Mine"))  # per end user


async def test_a_client_tools_output_counts_and_is_refused_over_the_quota(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await quota_widget(db, app, fake_openai, 2, tools=[client_tool()])
    alice = await visitor(http, app, db, widget)
    fake_openai.call_function("get_cart", {})
    events = await alice.send("What is in my cart?")  # 1
    thread_id = thread_of(events)
    assert done_items(events, ClientToolCallItem)
    output = {"thread_id": thread_id, "result": {"items": []}}
    assert answered(await alice.stream("threads.add_client_tool_output", **output))  # 2

    fake_openai.call_function("get_cart", {})
    events = await alice.send("And now?", thread_id)
    assert refused(events)
    assert done_items(events, ClientToolCallItem) == []
    assert len(fake_openai.function_outputs) == 1
    assert len(model_requests(fake_openai)) == 2

    widget = await quota_widget(db, app, fake_openai, 1, tools=[client_tool()])
    alice = await visitor(http, app, db, widget)
    fake_openai.call_function("get_cart", {})
    thread_id = thread_of(await alice.send("What is in my cart?"))  # 1
    calls = len(model_requests(fake_openai))
    output = {"thread_id": thread_id, "result": {"items": []}}
    assert refused(await alice.stream("threads.add_client_tool_output", **output))
    assert len(model_requests(fake_openai)) == calls


async def test_deleting_a_thread_gives_no_message_back(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await quota_widget(db, app, fake_openai, 1)
    alice = await visitor(http, app, db, widget)
    thread_id = thread_of(await alice.send("Hello"))
    await alice.call("threads.delete", thread_id=thread_id)

    assert refused(await alice.send("Hello again"))


async def test_a_retry_after_an_item_not_in_the_thread_is_a_404(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """As any other item the end user cannot see: not an empty stream (the SDK looked for
    it through the whole thread and found nothing to answer)."""
    widget = await make_chat_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    bob = await visitor(http, app, db, widget, end_user=BOB)
    thread_id = thread_of(await alice.send("Mine"))
    [bobs] = done_items(await bob.send("Bob's"), UserMessageItem)

    for item_id in (bobs.id, "msg_" + "x" * 22):
        response = await alice.post(
            "threads.retry_after_item", thread_id=thread_id, item_id=item_id
        )
        assert_problem(response, 404, "item_not_found")
    assert len(model_requests(fake_openai)) == 2


async def test_an_end_users_erasure_takes_what_their_quota_counted(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await quota_widget(db, app, fake_openai, 5)
    alice = await visitor(http, app, db, widget)
    bob = await visitor(http, app, db, widget, end_user=BOB)
    thread_id = thread_of(await alice.send("Hello"))
    await act(alice, thread_id)
    await bob.send("Hello")

    async def uses() -> dict[str, int]:
        rows = await db.execute(
            select(ChatQuotaUse.end_user_id, func.count()).group_by(ChatQuotaUse.end_user_id)
        )
        return {end_user: n for end_user, n in rows.all()}

    assert await uses() == {alice.end_user: 2, BOB: 1}
    await service.delete_end_user_data(db, widget.tenant_id, alice.end_user)
    assert await uses() == {BOB: 1}
