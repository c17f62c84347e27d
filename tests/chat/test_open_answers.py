"""The answers a process streams at once (``KITHOST_MAX_OPEN_ANSWERS``, here 2): one more is
refused with 503 ``server_busy`` before anything is written, and an answer gives its place
back when it ends or its visitor leaves; the count is a Prometheus gauge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx2
import pytest
from chatkit.types import AssistantMessageItem, ThreadStreamEvent
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.models import ChatItem, ChatQuotaUse, ChatThread, Widget
from kithost.settings import Settings
from tests.chat.helpers import (
    SentTasks,
    Visitor,
    assert_problem,
    chat_config,
    decode,
    deltas,
    done_items,
    make_chat_widget,
    message,
    thread_of,
    visitor,
)
from tests.conftest import create_test_app
from tests.fakes.openai_server import FakeOpenAI

CAP = 2
GAUGE = "kithost_chat_open_answers"


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection) -> FastAPI:
    return create_test_app(settings, connection, max_open_answers=CAP)


@dataclass
class Answer:
    """A streamed answer being read: its events so far."""

    response: httpx2.Response
    chunks: AsyncIterator[str]
    seen: str = ""
    events: list[ThreadStreamEvent] = field(default_factory=list)

    async def read_until_a_word(self) -> None:
        """Read until the answer's first word is out (its place is taken, its message written)."""
        while not deltas(self.events):
            self.seen += await anext(self.chunks)
            self.events = decode(self.seen)

    async def read_to_the_end(self) -> list[ThreadStreamEvent]:
        async for chunk in self.chunks:
            self.seen += chunk
        self.events = decode(self.seen)
        return self.events


@asynccontextmanager
async def answering(alice: Visitor, text: str) -> AsyncIterator[Answer]:
    """A new thread answered while the block runs (its first word read); leaving the block
    closes the connection (the visitor leaves, unless the answer has ended)."""
    body = {"type": "threads.create", "params": {"input": message(text)}}
    async with alice.http.stream("POST", alice.url, json=body, headers=alice.headers()) as response:
        assert response.status_code == 200
        answer = Answer(response, response.aiter_text())
        await answer.read_until_a_word()
        yield answer


async def open_answers(http: httpx2.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    [value] = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == GAUGE
    ]
    return value


Stored = type[ChatThread] | type[ChatItem] | type[ChatQuotaUse]


async def counts(db: AsyncSession, widget: Widget, items: int = 0) -> dict[Stored, int]:
    """The widget's threads, items and quota uses (once it has ``items`` items)."""
    for _ in range(100):
        found: dict[Stored, int] = {}
        for model in (ChatThread, ChatItem, ChatQuotaUse):
            query = select(func.count()).select_from(model).where(model.widget_id == widget.id)
            found[model] = await db.scalar(query) or 0
        if found[ChatItem] >= items:
            break
        await asyncio.sleep(0.05)
    return found


async def test_an_answer_beyond_the_cap_is_refused_before_anything_is_written(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
) -> None:
    """Two answers open (one held by the model, one paced at a word per 30 s): a third, to a
    new thread or to an existing one, is 503 ``server_busy`` with ``Retry-After`` and CORS
    (the loader reads it), stores no thread, message or quota use, and the tenant sees the
    existing thread's failed response; listing threads is no answer and still works. Once
    the held answer ends, a new one is taken."""
    config = chat_config(fake_openai, agent={"messages_per_user_per_day": 50})
    widget = await make_chat_widget(db, app, fake_openai, config)
    alice = await visitor(http, app, db, widget)
    thread_id = thread_of(await alice.send("Earlier"))
    before = await open_answers(http)
    fake_openai.hold_stream(after=1)
    async with answering(alice, "Held") as held:
        fake_openai.event_interval_seconds = 30  # the next answer: its first word, then a pause
        async with answering(alice, "Slow"):
            fake_openai.event_interval_seconds = 0
            assert await open_answers(http) >= CAP
            # Both messages are written behind their first words: 2 + 1 + 1 items.
            stored = await counts(db, widget, items=4)
            assert stored == {ChatThread: 3, ChatItem: 4, ChatQuotaUse: 3}

            refused = [
                await alice.post("threads.create", input=message("Refused")),
                await alice.post(
                    "threads.add_user_message", thread_id=thread_id, input=message("Refused")
                ),
            ]

            for response in refused:
                body = assert_problem(response, 503, "server_busy")
                assert body["status"] == 503
                assert 1 <= int(response.headers["retry-after"]) <= 10
                assert response.headers["access-control-allow-origin"] == alice.origin
                assert "Retry-After" in response.headers["access-control-expose-headers"]
            assert await counts(db, widget) == stored
            texts = await db.scalars(
                select(ChatItem.payload).where(ChatItem.widget_id == widget.id)
            )
            assert "Refused" not in str(list(texts))
            assert len((await alice.call("threads.list"))["data"]) == 3
            facts = [(f["name"], f["data"]) for f in await sent_tasks.facts()]
            assert (
                "server.response.failed",
                {"thread_id": thread_id, "error": "server_busy"},
            ) in facts

            fake_openai.release()
            assert done_items(await held.read_to_the_end(), AssistantMessageItem)

            taken = await alice.send("Now?")
            assert done_items(taken, AssistantMessageItem)

    await all_closed(http, before)  # the slow answer's visitor left: its place is back


async def all_closed(http: httpx2.AsyncClient, before: float) -> None:
    """Wait until the gauge is back where it was (the server noticed every visitor leave)."""
    for _ in range(100):
        if await open_answers(http) <= before:
            return
        await asyncio.sleep(0.05)
    assert await open_answers(http) <= before


async def test_a_visitor_leaving_mid_answer_gives_its_place_back(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await make_chat_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    before = await open_answers(http)
    fake_openai.hold_stream(after=1)
    async with answering(alice, "Held"):
        fake_openai.hold_stream(after=1)
        async with answering(alice, "Leaving"):
            refused = await alice.post("threads.create", input=message("Third"))
            assert_problem(refused, 503, "server_busy")
        # The second visitor left mid-answer (the connection closed): its place comes back
        # once the server notices.
        for _ in range(100):
            response = await alice.post("threads.create", input=message("Third"))
            if response.status_code != 503:
                break
            await asyncio.sleep(0.05)
        assert response.status_code == 200, response.text
        assert done_items(decode(response.text), AssistantMessageItem)
        fake_openai.release()

    await all_closed(http, before)
