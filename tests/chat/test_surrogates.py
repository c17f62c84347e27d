"""A lone surrogate's escape (``"\\ud800"``: valid JSON, which no UTF-8 can carry) in what a
tool or the model answers becomes U+FFFD where it enters (``kit.surrogates``): the model
reads the rest of the tool's answer, the model's answer streams and is stored, and the
answer goes on. (Visitors cannot send one: the endpoint's parser refuses it.)"""

from __future__ import annotations

import json

import httpx2
import pytest
from chatkit.types import AssistantMessageItem, ErrorEvent, ThreadStreamEvent
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message, Receive, Scope, Send

from tests.chat.helpers import (
    SECRET,
    chat_config,
    deltas,
    done_items,
    make_chat_widget,
    mcp_tool,
    mcp_widget,
    set_secret,
    thread_of,
    tool_widget,
    visitor,
)
from tests.fakes.mcp_server import FakeMcp
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI
from tests.fakes.tool_endpoint import ToolEndpoint

LONE = b'{"note": "a\\ud800b", "low": "\\udc00", "pair": "\\ud83d\\ude00", "kept": "\\\\ud800"}'
"""A lone high and low surrogate, a pair (one emoji) and text after an escaped backslash."""
READ = {"note": "a\ufffdb", "low": "\ufffd", "pair": "\U0001f600", "kept": "\\ud800"}


def failed(events: list[ThreadStreamEvent]) -> list[ErrorEvent]:
    return [e for e in events if isinstance(e, ErrorEvent)]


async def test_an_http_tools_lone_surrogate_reaches_the_model_as_a_replacement(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    async with ToolEndpoint(SECRET, answer=LONE) as endpoint:
        widget = await tool_widget(db, app, fake_openai, endpoint.url)
        alice = await visitor(http, app, db, widget)
        fake_openai.call_function("lookup_order", {"order": "A-1"})

        events = await alice.send("Where is my order A-1?")

    assert failed(events) == []
    assert [json.loads(o) for o in fake_openai.function_outputs] == [READ]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


class LoneSurrogateMcp(FakeMcp):
    """The fake MCP server whose every answer spells ``SUM`` with a lone surrogate inside
    (as a server in JavaScript would send a string cut in half), through the ASGI app."""

    SUM = b"123456"

    async def _recording(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def garbling(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message["headers"] if k != b"content-length"]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                body = message.get("body", b"").replace(self.SUM, b"123\\ud800456")
                message = {**message, "body": body}
            await send(message)

        await super()._recording(scope, receive, garbling)


async def test_an_mcp_tools_lone_surrogate_reaches_the_model_as_a_replacement(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    async with LoneSurrogateMcp() as server:
        widget = await mcp_widget(db, app, fake_openai, mcp_tool(server.url))
        await set_secret(db, app, widget, server.url)
        alice = await visitor(http, app, db, widget)
        fake_openai.call_function("add", {"a": 123000, "b": 456})

        events = await alice.send("What is 123000 + 456?")

    assert failed(events) == []
    [output] = fake_openai.function_outputs
    assert "123\ufffd456" in output, output
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


@pytest.mark.parametrize("model_api", ["responses", "chat_completions"])
async def test_a_lone_surrogate_in_the_models_answer_is_streamed_and_stored_as_a_replacement(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    model_api: str,
) -> None:
    config = chat_config(fake_openai, agent={"model_api": model_api})
    alice = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai, config))
    fake_openai.reply_text = "bad \ud800 text"

    events = await alice.send("Hi")

    assert failed(events) == []
    assert "".join(deltas(events)) == "bad \ufffd text"
    [answer] = done_items(events, AssistantMessageItem)
    assert answer.content[0].text == "bad \ufffd text"
    listed = await alice.call("items.list", thread_id=thread_of(events), order="asc")
    assert listed["data"][1]["content"][0]["text"] == "bad \ufffd text"
    again = await alice.send("Again", thread_of(events))  # the history goes back to the model
    assert failed(again) == []
