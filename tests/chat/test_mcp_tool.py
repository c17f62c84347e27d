"""An agent's ``mcp`` tool: Kithost connects to the tenant's MCP server (a real one, the
``mcp`` package's, on loopback), offers the model only the allowed tools, calls them when
the model does (with the tool's secret, sent to that server only) and hands the result back;
a server that is refused, unreachable or failing becomes an error the model sees, never a
failed response. Names resolve through a test resolver: nothing leaves loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from chatkit.types import ProgressUpdateEvent, ThreadStreamEvent
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.mcp_tools import client as mcp
from tests.chat.helpers import (
    ALLOWED,
    REFUSED_ADDRESSES,
    Resolver,
    SentTasks,
    deltas,
    leave_when,
    mcp_tool,
    mcp_widget,
    set_secret,
)
from tests.chat.helpers import visitor as make_visitor
from tests.fakes.mcp_server import SECRET, FakeMcp
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI


@pytest.fixture
async def mcp_server() -> AsyncIterator[FakeMcp]:
    async with FakeMcp() as server:
        yield server


def offered(fake: FakeOpenAI) -> list[str]:
    """The function names the first model request offered."""
    tools = fake.requests[0].json["tools"]
    return sorted(t.get("name") or t["function"]["name"] for t in tools)


def held_open() -> list[asyncio.Task[Any]]:
    """The tasks holding answers' MCP servers open (``mcp_tools.client.McpConnections``)."""
    return [t for t in asyncio.all_tasks() if t.get_name() == mcp.TASK_NAME and not t.done()]


@pytest.mark.parametrize("model_api", ["responses", "chat_completions"])
async def test_allowed_tools_are_offered_and_the_call_reaches_the_server(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    mcp_server: FakeMcp,
    model_api: str,
) -> None:
    widget = await mcp_widget(db, app, fake_openai, mcp_tool(mcp_server.url), model_api=model_api)
    await set_secret(db, app, widget, mcp_server.url)
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("order_status", {"order": "A-1"})

    events = await alice.send("Where is my order A-1?")

    assert offered(fake_openai) == ALLOWED  # never delete_everything
    assert not held_open()  # closed with the response
    [output] = fake_openai.function_outputs
    assert "Order A-1 has shipped." in output
    progress = [e.text for e in events if isinstance(e, ProgressUpdateEvent)]
    assert progress == ["Asking the order system…"]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
    assert mcp_server.requests, "Kithost talked to the MCP server"
    assert all(r.get("authorization") == SECRET for r in mcp_server.requests)
    sent_to_model = [json.dumps(r.headers) for r in fake_openai.requests]
    assert not any(SECRET.split()[1] in h for h in sent_to_model)


async def test_an_answers_servers_are_connected_side_by_side(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """Each server answers its first request only once the other has had its own: connected
    one after the other (as they were), the first timed out waiting and the model was
    offered its tools as errors."""
    gate = asyncio.Barrier(2)
    async with FakeMcp(gate=gate) as orders, FakeMcp(gate=gate) as maths:
        widget = await mcp_widget(
            db,
            app,
            fake_openai,
            mcp_tool(orders.url, allowed_tools=["order_status"], timeout_seconds=2),
            mcp_tool(maths.url, id="maths", allowed_tools=["add"], timeout_seconds=2),
        )
        await set_secret(db, app, widget, orders.url)
        alice = await make_visitor(http, app, db, widget)
        fake_openai.call_function("add", {"a": 2, "b": 3})

        events = await alice.send("What is 2 + 3?")

    assert offered(fake_openai) == ["add", "order_status"]
    descriptions = [t.get("description", "") for t in fake_openai.requests[0].json["tools"]]
    assert not [d for d in descriptions if "unavailable" in d]  # both servers connected
    [output] = fake_openai.function_outputs
    assert "5" in output
    assert "unavailable" not in output
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
    assert not held_open()


async def test_a_tool_the_config_does_not_allow_is_never_called(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    mcp_server: FakeMcp,
) -> None:
    widget = await mcp_widget(db, app, fake_openai, mcp_tool(mcp_server.url))
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("delete_everything", {})  # not offered: the fake answers text

    events = await alice.send("Delete everything")

    assert "delete_everything" not in offered(fake_openai)
    assert not mcp_server.deleted
    assert fake_openai.function_outputs == []
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_without_the_secret_the_server_refuses_and_the_model_is_told(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    mcp_server: FakeMcp,
) -> None:
    widget = await mcp_widget(db, app, fake_openai, mcp_tool(mcp_server.url))
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("order_status", {"order": "A-1"})

    events = await alice.send("Where is my order?")

    [output] = fake_openai.function_outputs
    assert "Error executing tool order_status" in output
    assert all("authorization" not in r for r in mcp_server.requests)
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_the_secret_goes_only_to_the_server_it_was_set_for(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    mcp_server: FakeMcp,
) -> None:
    async with FakeMcp() as elsewhere:
        widget = await mcp_widget(db, app, fake_openai, mcp_tool(elsewhere.url))
        await set_secret(db, app, widget, mcp_server.url)  # then the URL changed
        alice = await make_visitor(http, app, db, widget)
        fake_openai.call_function("add", {"a": 1, "b": 2})

        events = await alice.send("1 + 2?")

    assert elsewhere.requests == []
    assert mcp_server.requests == []
    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert output["error"] == (
        "This tool is unavailable right now. The tool's address changed since its secret "
        "was set: set the secret again."
    )
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_an_unreachable_server_is_an_error_the_model_sees(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
) -> None:
    """The port is held, never listening: connecting is refused, and no server of another
    test process can take it meanwhile (a stopped server's port is free for any)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}/mcp"
        widget = await mcp_widget(db, app, fake_openai, mcp_tool(url, timeout_seconds=2))
        alice = await make_visitor(http, app, db, widget)
        fake_openai.call_function("add", {"a": 1, "b": 2})

        events = await alice.send("1 + 2?")

    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert output["error"] == (
        "This tool is unavailable right now. "
        "Failed to connect to MCP server 'orders': Could not reach the server."
    )
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
    facts = [f["name"] for f in await sent_tasks.facts()]
    assert "server.response.finished" in facts
    assert "server.response.failed" not in facts


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (("slow", {"seconds": 30}), "The MCP server did not answer within 2 s."),
        (("big", {"size": 5000}), "The MCP server's answer is larger than 4000 bytes."),
    ],
)
async def test_a_slow_or_oversized_answer_is_an_error_the_model_sees(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    mcp_server: FakeMcp,
    monkeypatch: pytest.MonkeyPatch,
    call: tuple[str, dict[str, Any]],
    error: str,
) -> None:
    """The timeout bounds each request of connecting too (initialize, the tools' list: tens
    of ms, in the event loop the app and the server share), so it leaves a busy box (CI's
    full run) room: one of them answered late would make the tool unavailable before the
    call, with another error."""
    monkeypatch.setattr(mcp, "MAX_RESPONSE_BYTES", 4000)
    tool = mcp_tool(mcp_server.url, allowed_tools=["slow", "big"], timeout_seconds=2)
    widget = await mcp_widget(db, app, fake_openai, tool)
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function(*call)

    events = await alice.send("Go")

    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert output == {"error": error}
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
    url = "https://mcp.acme.example/mcp"
    widget = await mcp_widget(db, app, fake_openai, mcp_tool(url))
    await set_secret(db, app, widget, url)
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("add", {"a": 1, "b": 2})

    events = await alice.send("1 + 2?")

    assert resolver.asked == ["mcp.acme.example"]
    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert output["error"] == (
        "This tool is unavailable right now. Kithost may not connect to this address: "
        "mcp.acme.example: not a public address"
    ), f"not what it resolves to ({address}: {reason}): the server log says"
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_plain_http_to_a_public_name_is_refused_without_resolving(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    resolver = Resolver.installed(app, ["93.184.215.14"])
    widget = await mcp_widget(db, app, fake_openai, mcp_tool("http://mcp.acme.example/mcp"))
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("add", {"a": 1, "b": 2})

    await alice.send("1 + 2?")

    assert resolver.asked == []
    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert "https:// is required" in output["error"]


async def test_arguments_that_are_not_json_are_an_error_the_model_sees(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    mcp_server: FakeMcp,
) -> None:
    widget = await mcp_widget(db, app, fake_openai, mcp_tool(mcp_server.url))
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("add", "{not json")

    events = await alice.send("1 + 2?")

    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert output == {"error": "Invalid JSON input for tool add"}
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_a_visitor_leaving_mid_call_closes_the_servers_connection(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    mcp_server: FakeMcp,
    sent_tasks: SentTasks,
) -> None:
    tool = mcp_tool(mcp_server.url, allowed_tools=["slow"], timeout_seconds=30)
    widget = await mcp_widget(db, app, fake_openai, tool)
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("slow", {"seconds": 20})

    held: list[int] = []

    def calling(events: list[ThreadStreamEvent]) -> bool:
        held.append(len(held_open()))
        return any(isinstance(e, ProgressUpdateEvent) for e in events)

    await leave_when(http, alice, "Take your time", calling)

    assert held[-1] == 1  # the server was held open while its tool ran
    for _ in range(100):  # the server notices the disconnect asynchronously
        if not held_open():
            break
        await asyncio.sleep(0.05)
    assert not held_open()  # Kithost closed its connection to the server
    assert fake_openai.function_outputs == []
    assert ("server.response.failed", "cancelled") in [
        (f["name"], f["data"].get("error")) for f in await sent_tasks.facts()
    ]


async def test_another_tenants_widget_never_sends_the_secret(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    mcp_server: FakeMcp,
) -> None:
    """Same tool id, same server: the secret belongs to one widget of one tenant."""
    owner = await mcp_widget(db, app, fake_openai, mcp_tool(mcp_server.url))
    await set_secret(db, app, owner, mcp_server.url)
    other = await mcp_widget(db, app, fake_openai, mcp_tool(mcp_server.url))
    assert other.tenant_id != owner.tenant_id
    bob = await make_visitor(http, app, db, other)
    fake_openai.call_function("order_status", {"order": "A-1"})

    await bob.send("Where is order A-1?")

    assert mcp_server.requests
    assert all("authorization" not in r for r in mcp_server.requests)
    [output] = fake_openai.function_outputs
    assert "Error executing tool order_status" in output


async def test_only_the_agents_that_pick_the_mcp_tool_are_offered_its_tools(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    mcp_server: FakeMcp,
) -> None:
    orders = {"id": "orders", "name": "Orders", "instructions": "You track orders."}
    widget = await mcp_widget(
        db,
        app,
        fake_openai,
        mcp_tool(mcp_server.url),
        main_tools=[],
        handoffs=[{**orders, "tools": ["orders"]}],
    )
    await set_secret(db, app, widget, mcp_server.url)
    alice = await make_visitor(http, app, db, widget)
    fake_openai.hand_off("orders")

    await alice.send("Where is my order A-1?")

    first, second = (r.json for r in fake_openai.requests[:2])
    names = [
        sorted(t.get("name") or t["function"]["name"] for t in r["tools"]) for r in (first, second)
    ]
    assert names == [["transfer_to_orders"], [*ALLOWED, "transfer_to_main"]]
