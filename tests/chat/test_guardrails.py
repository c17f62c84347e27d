"""An agent's guardrails: a message too long, on a refused topic (a case-insensitive match)
or flagged by OpenAI's moderation gets the widget's refusal message — stored with the
thread, reported as ``server.guardrail.tripped`` — and never reaches the model."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from chatkit.types import AssistantMessageItem, ThreadItemDoneEvent
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Widget
from tests.chat.helpers import (
    SentTasks,
    chat_config,
    deltas,
    make_chat_widget,
    publish_unchecked,
    thread_of,
    visitor,
)
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI

REFUSAL = "I can only talk about our tents."


async def guarded_widget(
    db: AsyncSession, app: FastAPI, fake: FakeOpenAI, **guardrails: Any
) -> Widget:
    widget = await make_chat_widget(db, app, fake)
    config = chat_config(fake, agent={"guardrails": {"refusal_message": REFUSAL, **guardrails}})
    await publish_unchecked(db, widget, config)
    return widget


def model_calls(fake: FakeOpenAI) -> list[str]:
    return [r.path for r in fake.requests if r.path == "/v1/responses"]


@pytest.mark.parametrize(
    ("guardrails", "message", "tripped"),
    [
        ({"max_input_length": 10}, "This message is too long.", "max_input_length"),
        ({"refused_topics": ["Politics", "crypto"]}, "What about CRYPTO coins?", "refused_topic"),
        ({"moderation": True}, "You are FLAGGED.", "moderation"),
    ],
)
async def test_a_tripped_guardrail_refuses_without_the_model(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
    guardrails: dict[str, Any],
    message: str,
    tripped: str,
) -> None:
    widget = await guarded_widget(db, app, fake_openai, **guardrails)
    alice = await visitor(http, app, db, widget)

    events = await alice.send(message)

    assert model_calls(fake_openai) == []
    [answer] = [
        e.item
        for e in events
        if isinstance(e, ThreadItemDoneEvent) and isinstance(e.item, AssistantMessageItem)
    ]
    assert [c.text for c in answer.content] == [REFUSAL]
    thread = thread_of(events)
    items = await alice.call("items.list", thread_id=thread, order="asc")
    stored = [(i["type"], i["content"][0]["text"]) for i in items["data"]]
    assert stored == [("user_message", message), ("assistant_message", REFUSAL)]
    facts = [f for f in await sent_tasks.facts() if f["name"] == "server.guardrail.tripped"]
    assert [f["data"] for f in facts] == [{"thread_id": thread, "guardrail": tripped}]


async def test_a_message_passing_every_guardrail_reaches_the_model(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
) -> None:
    widget = await guarded_widget(
        db,
        app,
        fake_openai,
        max_input_length=100,
        refused_topics=["politics"],
        moderation=True,
    )
    alice = await visitor(http, app, db, widget)

    events = await alice.send("Is this tent waterproof?")

    assert fake_openai.moderated == ["Is this tent waterproof?"]
    assert model_calls(fake_openai) == ["/v1/responses"]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
    names = [f["name"] for f in await sent_tasks.facts()]
    assert "server.guardrail.tripped" not in names
