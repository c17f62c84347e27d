"""The ChatKit protocol end to end: real HTTP to Kithost, the fake model behind it."""

from __future__ import annotations

import re

import httpx
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
from sqlalchemy.ext.asyncio import AsyncSession

from tests.chat.helpers import SentTasks, deltas, make_chat_widget, visitor
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI

OWN_ID = re.compile(r"^(thr|msg)_[A-Za-z0-9_-]{22}$")


async def test_threads_create_streams_the_answer(
    http: httpx.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
) -> None:
    widget = await make_chat_widget(db, app, fake_openai)
    alice = await visitor(http, widget)

    events = await alice.send("Where is my order #42?")

    created, user_done, options, added, *updates, done = events
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
    [titled] = [e for e in updates if isinstance(e, ThreadUpdatedEvent)]
    assert titled.thread.title == "Where is my order #42?"
    [request] = fake_openai.requests
    assert request.path == "/v1/responses"
    assert request.json["instructions"].startswith("You are a helpful assistant.")
    assert sent_tasks.names() == [
        "server.thread.created",
        "server.message.received",
        "server.response.finished",
    ]
