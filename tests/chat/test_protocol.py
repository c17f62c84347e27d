"""The ChatKit protocol end to end: real HTTP to Kithost, the fake model behind it."""

from __future__ import annotations

import re

import httpx2
import pytest
from chatkit.types import (
    AssistantMessageItem,
    StreamOptionsEvent,
    ThreadCreatedEvent,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadUpdatedEvent,
    UserMessageItem,
)
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat import agent
from kithost.models import ChatItem, WebhookDelivery, WebhookEndpoint
from kithost.webhooks import service as webhooks
from tests.chat.helpers import (
    INGEST,
    SentTasks,
    answer_of,
    assert_problem,
    chat_config,
    deltas,
    make_chat_widget,
    thread_of,
    visitor,
)
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI

OWN_ID = re.compile(r"^(thr|msg)_[A-Za-z0-9_-]{22}$")


async def test_threads_create_streams_the_answer(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
) -> None:
    widget = await make_chat_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)

    events = await alice.send("Where is my order #42?")

    created, user_done, options, added, *updates, done, titled = events
    assert isinstance(created, ThreadCreatedEvent)
    assert OWN_ID.match(created.thread.id)
    assert isinstance(user_done, ThreadItemDoneEvent)
    assert isinstance(user_done.item, UserMessageItem)
    assert isinstance(options, StreamOptionsEvent)
    assert options.stream_options.allow_cancel
    assert isinstance(added, ThreadItemAddedEvent)
    assert isinstance(done, ThreadItemDoneEvent)
    assert isinstance(done.item, AssistantMessageItem)
    assert OWN_ID.match(done.item.id)
    assert done.item.id == added.item.id
    assert "".join(deltas(updates)) == DEFAULT_REPLY_TEXT == done.item.content[0].text
    assert isinstance(titled, ThreadUpdatedEvent)  # once answered
    assert titled.thread.title == "Where is my order #42?"
    [request] = fake_openai.requests
    assert request.path == "/v1/responses"
    assert request.json["instructions"].startswith("You are a helpful assistant.")
    facts = await sent_tasks.facts()
    assert [f["name"] for f in facts] == [
        "server.thread.created",
        "server.message.received",
        "server.response.finished",
    ]
    [(task, (tenant_id, widget_id, _))] = sent_tasks.tasks  # one batch
    assert (task, tenant_id, widget_id) == (INGEST, str(widget.tenant_id), str(widget.id))
    finished = facts[-1]["data"]
    assert finished["thread_id"] == created.thread.id
    assert finished["input_tokens"] > 0
    assert finished["output_tokens"] > 0
    assert 0 <= finished["first_token_ms"] <= finished["total_ms"]


async def test_chat_completions_with_history(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    config = chat_config(fake_openai, agent={"model_api": "chat_completions", "model": "local-llm"})
    alice = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai, config))

    first = await alice.send("Hi there")
    thread_id = thread_of(first)
    second = await alice.send("And again", thread_id)

    assert "".join(deltas(second)) == DEFAULT_REPLY_TEXT
    done = [e.item for e in first + second if isinstance(e, ThreadItemDoneEvent)]
    assert len({item.id for item in done}) == 4  # Chat Completions ids are replaced by ours
    last = fake_openai.requests[-1]
    assert (last.path, last.json["model"]) == ("/v1/chat/completions", "local-llm")
    assert [(m["role"], text_of(m["content"])) for m in last.json["messages"][1:]] == [
        ("user", "Hi there"),
        ("assistant", DEFAULT_REPLY_TEXT),
        ("user", "And again"),
    ]
    assert last.json["stream_options"] == {"include_usage": True}


async def test_the_model_sees_the_latest_items_of_a_long_thread(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agent, "HISTORY_ITEMS", 3)
    alice = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai))
    thread_id = thread_of(await alice.send("One"))
    await alice.send("Two", thread_id)

    await alice.send("Three", thread_id)

    history = fake_openai.requests[-1].json["input"]
    assert [(m["role"], text_of(m["content"])) for m in history] == [
        ("user", "Two"),
        ("assistant", DEFAULT_REPLY_TEXT),
        ("user", "Three"),
    ]


def text_of(content: str | list[dict[str, str]]) -> str:
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


async def test_threads_and_items_are_listed_read_renamed_and_deleted(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    alice = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai))
    older = thread_of(await alice.send("First question"))
    newer = thread_of(await alice.send("Second question"))

    page = await alice.call("threads.list", limit=1)
    assert ([t["id"] for t in page["data"]], page["has_more"]) == ([newer], True)
    rest = await alice.call("threads.list", limit=1, after=page["after"])
    assert ([t["id"] for t in rest["data"]], rest["has_more"]) == ([older], False)

    items = await alice.call("items.list", thread_id=older, order="asc", limit=1)
    assert [i["type"] for i in items["data"]] == ["user_message"]
    tail = await alice.call("items.list", thread_id=older, order="asc", after=items["after"])
    assert [i["type"] for i in tail["data"]] == ["assistant_message"]

    thread = await alice.call("threads.get_by_id", thread_id=older)
    assert thread["title"] == "First question"
    assert [i["type"] for i in thread["items"]["data"]] == ["user_message", "assistant_message"]
    renamed = await alice.call("threads.update", thread_id=older, title="Renamed")
    assert renamed["title"] == "Renamed"
    assert (await alice.call("threads.get_by_id", thread_id=older))["title"] == "Renamed"

    assert await alice.call("threads.delete", thread_id=older) == {}
    gone = await alice.post("threads.get_by_id", thread_id=older)
    assert (gone.status_code, gone.json()["code"]) == (404, "thread_not_found")
    assert gone.headers["access-control-allow-origin"] == alice.origin
    remaining = await alice.call("threads.list")
    assert [t["id"] for t in remaining["data"]] == [newer]


async def test_feedback_is_stored_and_reported(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
) -> None:
    alice = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai))
    events = await alice.send("Hello")
    thread_id, answer = thread_of(events), answer_of(events)

    assert (
        await alice.call(
            "items.feedback", thread_id=thread_id, item_ids=[answer, "msg_unknown"], kind="negative"
        )
        == {}
    )

    row = await db.get(ChatItem, answer)
    assert row is not None
    assert row.feedback == "negative"
    [feedback] = [f for f in await sent_tasks.facts() if f["name"] == "server.feedback"]
    assert feedback["data"] == {"thread_id": thread_id, "kind": "negative", "items": 1}
    assert feedback["end_user"] == alice.end_user
    assert feedback["id"].startswith("s_")


async def test_feedback_on_items_not_in_the_thread_counts_nowhere(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
) -> None:
    widget = await make_chat_widget(db, app, fake_openai)
    db.add(
        WebhookEndpoint(
            tenant_id=widget.tenant_id,
            url="https://hooks.example.com/r",
            events=["feedback.created"],
            secret="s",
        )
    )
    await db.flush()
    webhooks._quiet.pop(widget.tenant_id, None)  # as creating it through the API does
    alice = await visitor(http, app, db, widget)
    events = await alice.send("Hello")
    thread_id, answer = thread_of(events), answer_of(events)

    forged = ["msg_FORGED_1", "msg_FORGED_2"]
    await alice.call("items.feedback", thread_id=thread_id, item_ids=forged, kind="negative")
    mixed = [answer, "msg_FORGED_1", answer]
    await alice.call("items.feedback", thread_id=thread_id, item_ids=mixed, kind="positive")
    too_many = [answer] + [f"msg_{n}" for n in range(100)]
    refused = await alice.post(
        "items.feedback", thread_id=thread_id, item_ids=too_many, kind="negative"
    )

    assert_problem(refused, 422, "validation_failed")
    assert refused.json()["errors"][0]["field"] == "params.item_ids"
    row = await db.get(ChatItem, answer)
    assert row is not None
    assert row.feedback == "positive"
    feedback = [f["data"] for f in await sent_tasks.facts() if f["name"] == "server.feedback"]
    assert feedback == [{"thread_id": thread_id, "kind": "positive", "items": 1}]
    deliveries = (
        await db.scalars(
            select(WebhookDelivery).where(WebhookDelivery.tenant_id == widget.tenant_id)
        )
    ).all()
    assert [(d.event_type, d.payload["data"]) for d in deliveries] == [
        ("feedback.created", {"thread_id": thread_id, "item_ids": [answer], "kind": "positive"})
    ]


@pytest.mark.parametrize(
    "title", ["t" * 201, "Refund \u202eredro\u202c", "Bell\u0007", "two\nlines"]
)
async def test_titles_a_visitor_gives_are_bounded_and_visible(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI, title: str
) -> None:
    alice = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai))
    thread_id = thread_of(await alice.send("Where is my order?"))

    refused = await alice.post("threads.update", thread_id=thread_id, title=title)

    assert_problem(refused, 422, "validation_failed")
    assert refused.json()["errors"][0]["field"] == "params.title"
    thread = await alice.call("threads.get_by_id", thread_id=thread_id)
    assert thread["title"] == "Where is my order?"
    longest = "Ä" * 200
    renamed = await alice.call("threads.update", thread_id=thread_id, title=longest)
    assert renamed["title"] == longest


async def test_titles_made_from_a_message_leave_invisible_characters_out(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    alice = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai))

    events = await alice.send("Refund\u202e \u200bredro\u202c\nplease\u0007 \u2066now")

    thread = await alice.call("threads.get_by_id", thread_id=thread_of(events))
    assert thread["title"] == "Refund redro please now"


async def test_retry_after_item_answers_again(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    alice = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai))
    events = await alice.send("Hello")
    thread_id, first_answer = thread_of(events), answer_of(events)
    [question] = [
        e.item.id
        for e in events
        if isinstance(e, ThreadItemDoneEvent) and isinstance(e.item, UserMessageItem)
    ]
    fake_openai.reply_text = "A better answer."

    retried = await alice.stream("threads.retry_after_item", thread_id=thread_id, item_id=question)

    assert "".join(deltas(retried)) == "A better answer."
    items = await alice.call("items.list", thread_id=thread_id, order="asc")
    assert [i["id"] for i in items["data"]] == [question, answer_of(retried)]
    assert first_answer != answer_of(retried)
    not_a_question = await alice.post(
        "threads.retry_after_item", thread_id=thread_id, item_id=answer_of(retried)
    )
    assert (not_a_question.status_code, not_a_question.json()["code"]) == (
        400,
        "invalid_chatkit_request",
    )
