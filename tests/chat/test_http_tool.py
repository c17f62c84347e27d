"""An agent's ``http`` tool: the model's call reaches the tenant's endpoint signed with the
widget's tool secret (HMAC-SHA256 over timestamp and body), with the end user and thread,
and the endpoint's JSON goes back to the model; whatever goes wrong (a status, a timeout,
an answer too large, an address Kithost may not reach) becomes an error the model sees,
never a failed response. Names resolve through a test resolver: nothing leaves loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from chatkit.types import ProgressUpdateEvent
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.chat.helpers import (
    ORDER_ARGS,
    REFUSED_ADDRESSES,
    SECRET,
    Resolver,
    chat_config,
    deltas,
    http_tool,
    publish_unchecked,
    thread_of,
    tool_widget,
)
from tests.chat.helpers import visitor as make_visitor
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI
from tests.fakes.tool_endpoint import ToolEndpoint

LARGER = "larger than 100 bytes"


async def test_the_call_is_signed_and_its_answer_reaches_the_model(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    async with ToolEndpoint(SECRET) as endpoint:
        widget = await tool_widget(db, app, fake_openai, endpoint.url)
        alice = await make_visitor(http, app, db, widget)
        fake_openai.call_function("lookup_order", ORDER_ARGS)

        events = await alice.send("Where is my order A-1?")

    [received] = endpoint.received
    assert received.signed
    assert (received.method, received.path) == ("POST", "/tools/order")
    body = received.json
    assert body["tool"] == "lookup_order"
    assert body["arguments"] == ORDER_ARGS
    assert body["end_user"] == alice.end_user
    assert body["thread_id"] == thread_of(events)
    assert body["call_id"].startswith("call_")
    assert [json.loads(o) for o in fake_openai.function_outputs] == [{"status": "shipped"}]
    progress = [e.text for e in events if isinstance(e, ProgressUpdateEvent)]
    assert progress == ["Looking up your order…"]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ({"status": 500}, "The tool answered with HTTP status 500."),
        ({"answer": b"<html>"}, "The tool's answer is not JSON."),
        (
            {"answer": b'{"x": "' + b"y" * 200 + b'"}'},
            "The tool's answer is larger than 100 bytes.",
        ),
        ({"delay_seconds": 2}, "The tool did not answer within 0.3 s."),
    ],
)
async def test_a_failing_tool_is_an_error_the_model_sees(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    setup: dict[str, Any],
    error: str,
) -> None:
    async with ToolEndpoint(SECRET, **setup) as endpoint:
        widget = await tool_widget(
            db, app, fake_openai, endpoint.url, timeout_seconds=0.3, max_response_bytes=100
        )
        alice = await make_visitor(http, app, db, widget)
        fake_openai.call_function("lookup_order", ORDER_ARGS)

        events = await alice.send("Where is my order?")

    assert [json.loads(o) for o in fake_openai.function_outputs] == [{"error": error}]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_an_answer_nested_too_deep_to_read_is_an_error_the_model_sees(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """json.loads raised RecursionError (not a ValueError), which failed the answer."""
    async with ToolEndpoint(SECRET, answer=b"[" * 5000 + b"]" * 5000) as endpoint:
        widget = await tool_widget(db, app, fake_openai, endpoint.url, max_response_bytes=20_000)
        alice = await make_visitor(http, app, db, widget)
        fake_openai.call_function("lookup_order", ORDER_ARGS)

        events = await alice.send("Where is my order?")

    assert [json.loads(o) for o in fake_openai.function_outputs] == [
        {"error": "The tool's answer is not JSON."}
    ]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_a_widget_without_a_tool_secret_sends_nothing(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    async with ToolEndpoint(SECRET) as endpoint:
        widget = await tool_widget(db, app, fake_openai, endpoint.url)
        widget.tool_secret = None
        await db.flush()
        alice = await make_visitor(http, app, db, widget)
        fake_openai.call_function("lookup_order", ORDER_ARGS)

        events = await alice.send("Where is my order?")

    assert endpoint.received == []
    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert "no tool secret" in output["error"]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


@pytest.mark.parametrize(("address", "reason"), REFUSED_ADDRESSES)
async def test_a_name_resolving_to_an_internal_address_is_refused(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    address: str,
    reason: str,
) -> None:
    resolver = Resolver.installed(app, [address])
    widget = await tool_widget(db, app, fake_openai, "https://tools.acme.example/order")
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("lookup_order", ORDER_ARGS)

    events = await alice.send("Where is my order?")

    assert resolver.asked == ["tools.acme.example"]
    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert output["error"] == (
        "Kithost may not call this tool's address: tools.acme.example: not a public address"
    ), f"not what it resolves to ({address}: {reason}): the server log says"
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_plain_http_to_a_public_name_is_refused_without_resolving(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    resolver = Resolver.installed(app, ["93.184.215.14"])
    widget = await tool_widget(db, app, fake_openai, "http://tools.acme.example/order")
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("lookup_order", ORDER_ARGS)

    await alice.send("Where is my order?")

    assert resolver.asked == []
    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert "https:// is required" in output["error"]


async def test_the_tool_works_with_chat_completions(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    async with ToolEndpoint(SECRET) as endpoint:
        widget = await tool_widget(db, app, fake_openai, endpoint.url)
        config = chat_config(
            fake_openai,
            agent={"model_api": "chat_completions", "tools": [http_tool(endpoint.url)]},
        )
        await publish_unchecked(db, widget, config)
        alice = await make_visitor(http, app, db, widget)
        fake_openai.call_function("lookup_order", ORDER_ARGS)

        events = await alice.send("Where is my order A-1?")

    [received] = endpoint.received
    assert received.signed
    assert received.json["arguments"] == ORDER_ARGS
    assert [json.loads(o) for o in fake_openai.function_outputs] == [{"status": "shipped"}]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
