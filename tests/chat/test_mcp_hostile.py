"""An answer's ``mcp`` tools against a server that misbehaves (``tests/fakes/hostile_mcp``):
what it sends compressed counts as what it decodes to, and a server that fails and then
drips the closing of its session holds the answer no longer than closing may take. Each is
an error the model sees at worst, never a failed or endless answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.mcp_tools import client as mcp
from tests.chat.helpers import chat_config, deltas, make_chat_widget, publish_unchecked
from tests.chat.helpers import visitor as make_visitor
from tests.fakes.hostile_mcp import HostileMcp, tool
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI


async def answered(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake: FakeOpenAI,
    server: HostileMcp,
    allowed: list[str],
) -> list[Any]:
    """A visitor's message to a widget whose agent has ``server`` as its ``mcp`` tool, the
    model calling ``allowed[0]``: the events (within 10 s)."""
    widget = await make_chat_widget(db, app, fake)
    mcp_tool = {"type": "mcp", "id": "hostile", "url": server.url, "allowed_tools": allowed}
    await publish_unchecked(db, widget, chat_config(fake, agent={"tools": [mcp_tool]}))
    alice = await make_visitor(http, app, db, widget)
    fake.call_function(allowed[0], {})
    async with asyncio.timeout(10):
        return list(await alice.send("Go"))


async def test_a_compressed_answer_counts_as_what_it_decodes_to(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cap counted the bytes as sent: 300 KB of gzip held 2 GB in the MCP client."""
    monkeypatch.setattr(mcp, "MAX_RESPONSE_BYTES", 4000)
    async with HostileMcp(tools=[tool("add", "x" * 10_000)], gzip=True) as server:
        events = await answered(http, app, db, fake_openai, server, ["add"])

    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert output == {
        "error": "This tool is unavailable right now. "
        "The MCP server's answer is larger than 4000 bytes."
    }
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_a_compressed_answer_within_the_cap_works(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    async with HostileMcp(gzip=True) as server:
        events = await answered(http, app, db, fake_openai, server, ["add"])

    assert fake_openai.function_outputs
    assert "called add" in fake_openai.function_outputs[0]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_a_failing_server_dripping_its_closing_holds_the_answer_no_longer_than_closing(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its tools could not be listed, and closing its session (a DELETE answered a byte at a
    time) held the answer, before the model ran, for as long as the server liked."""
    monkeypatch.setattr(mcp, "CLOSE_SECONDS", 0.5)
    async with HostileMcp(list_status=500, drip_close=True) as server:
        events = await answered(http, app, db, fake_openai, server, ["add"])

    assert ("DELETE", "-") in server.methods
    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert output["error"].startswith("This tool is unavailable right now.")
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
