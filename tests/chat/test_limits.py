"""An answer's limits (``agent.limits``): beyond its turns, its tool calls or its time the
answer ends with a notice saying which, and the tenant sees why in ``server.response.failed``."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from chatkit.types import NoticeEvent
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Widget
from tests.chat.helpers import SentTasks, chat_config, make_chat_widget, publish_unchecked, visitor
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.tool_endpoint import ToolEndpoint

SECRET = "kts_" + "l" * 43


async def limited_widget(
    db: AsyncSession, app: FastAPI, fake: FakeOpenAI, url: str, **limits: Any
) -> Widget:
    widget = await make_chat_widget(db, app, fake)
    widget.tool_secret = app.state.secret_box.encrypt(SECRET)
    tool = {
        "type": "http",
        "id": "orders",
        "name": "lookup_order",
        "description": "The status of an order.",
        "url": url,
    }
    config = chat_config(fake, agent={"tools": [tool], "limits": limits})
    await publish_unchecked(db, widget, config)
    return widget


@pytest.mark.parametrize(
    ("limits", "calls", "notice", "error"),
    [
        ({"max_turns": 1}, 1, "it needed more than 1 steps", "limit: max_turns"),
        ({"max_tool_calls": 1}, 2, "it needed more than 1 tool calls", "limit: max_tool_calls"),
        ({"max_seconds": 1}, 0, "it took longer than 1 s", "limit: max_seconds"),
    ],
)
async def test_an_answer_beyond_its_limits_ends_with_a_notice(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
    limits: dict[str, Any],
    calls: int,
    notice: str,
    error: str,
) -> None:
    async with ToolEndpoint(SECRET) as endpoint:
        widget = await limited_widget(db, app, fake_openai, endpoint.url, **limits)
        alice = await visitor(http, app, db, widget)
        for _ in range(calls):
            fake_openai.call_function("lookup_order", {"order": "A-1"})
        if "max_seconds" in limits:
            fake_openai.event_interval_seconds = 0.6

        events = await alice.send("Where is my order?")

    assert len(endpoint.received) == min(calls, 1), "no call beyond the limits"
    [stopped] = [e for e in events if isinstance(e, NoticeEvent)]
    assert stopped.title == "Answer stopped"
    assert notice in stopped.message
    [failed] = [f for f in await sent_tasks.facts() if f["name"] == "server.response.failed"]
    assert failed["data"]["error"] == error


async def test_an_answer_within_its_limits_is_not_stopped(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    async with ToolEndpoint(SECRET) as endpoint:
        widget = await limited_widget(
            db, app, fake_openai, endpoint.url, max_turns=2, max_tool_calls=1, max_seconds=30
        )
        alice = await visitor(http, app, db, widget)
        fake_openai.call_function("lookup_order", {"order": "A-1"})

        events = await alice.send("Where is my order?")

    assert len(endpoint.received) == 1
    assert not [e for e in events if isinstance(e, NoticeEvent)]
