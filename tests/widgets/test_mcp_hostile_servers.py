"""Listing an ``mcp`` tool's server's tools (``POST …/tools/{id}/discover``) when the server
misbehaves (``tests/fakes/hostile_mcp``): what it sends compressed counts as what it decodes
to; closing its session, however slowly it answers, takes at most ``CLOSE_SECONDS``, and a
start that fails at most twice the tool's timeout and that; and while the server takes its
time, the request holds no database connection."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.mcp_tools import client as mcp
from kithost.settings import Settings
from kithost.widgets.service import create_widget
from tests.factories import client_token, set_draft
from tests.fakes.hostile_mcp import HostileMcp, tool
from tests.races import racing_app
from tests.widgets.helpers import Acme, mcp_tool, url, with_tools

DISCOVER = "/tools/orders/discover"


async def discovered(
    client: httpx2.AsyncClient, acme: Acme, server: HostileMcp, **extra: object
) -> httpx2.Response:
    widget = await with_tools(
        client, acme, mcp_tool(url=server.url, allowed_tools=["add"], **extra)
    )
    async with asyncio.timeout(15):  # a request held without end fails the test
        return await client.post(url(widget, DISCOVER), headers=acme.headers)


async def test_a_compressed_listing_counts_as_what_it_decodes_to(
    client: httpx2.AsyncClient, acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap counted the bytes as sent: 300 KB of gzip held 2 GB in the MCP client."""
    monkeypatch.setattr(mcp, "MAX_RESPONSE_BYTES", 4000)
    async with HostileMcp(tools=[tool("add", "x" * 10_000)], gzip=True) as server:
        found = await discovered(client, acme, server)

    assert found.status_code == 502, found.text
    assert found.headers["content-type"] == "application/problem+json"
    problem = found.json()
    assert problem["code"] == "mcp_unavailable"
    assert problem["detail"] == "The MCP server's answer is larger than 4000 bytes."


async def test_a_compressed_listing_within_the_cap_is_listed(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    async with HostileMcp(tools=[tool("add", "Adds.")], gzip=True) as server:
        found = await discovered(client, acme, server)

    assert found.status_code == 200, found.text
    assert [(t["name"], t["description"]) for t in found.json()["tools"]] == [("add", "Adds.")]


async def test_a_server_dripping_the_closing_of_its_session_holds_discovery_no_longer(
    client: httpx2.AsyncClient, acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its DELETE answered a byte at a time held the request for as long as it liked."""
    monkeypatch.setattr(mcp, "CLOSE_SECONDS", 0.5)
    async with HostileMcp(drip_close=True) as server:
        found = await discovered(client, acme, server)

    assert found.status_code == 200, found.text
    assert [t["name"] for t in found.json()["tools"]] == ["add"]
    assert ("DELETE", "-") in server.methods


async def test_a_failed_start_the_server_then_drips_ends_at_its_deadline(
    client: httpx2.AsyncClient, acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A protocol version the client refuses: the SDK closes the session itself, and the
    server's dripping answer to that held the request without end."""
    monkeypatch.setattr(mcp, "CLOSE_SECONDS", 0.5)
    async with HostileMcp(protocol_version="1999-01-01", drip_close=True) as server:
        found = await discovered(client, acme, server, timeout_seconds=1)

    assert found.status_code == 502, found.text
    assert found.json()["code"] == "mcp_timeout"


async def test_discovery_holds_no_database_connection_while_the_server_takes_its_time(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one connection in the pool, a discovery waiting for its server kept it, and
    every other request waited for the pool."""
    one = {"database_pool_size": 1, "database_max_overflow": 0}
    async with (
        racing_app(settings, monkeypatch, **one) as racing,
        HostileMcp(hold_start=True) as server,
    ):
        async with racing.arranging() as session:
            tenant = await racing.tenant(session)
            widget = await create_widget(session, CLI, tenant, name="Held")
            tools = [mcp_tool(url=server.url, allowed_tools=["add"], timeout_seconds=30)]
            set_draft(widget, {"agent": {"tools": tools}})
            editor = await client_token(
                racing.app, session, tenant, [Scope.widgets_read, Scope.widgets_write]
            )
        widgets = f"/api/v1/tenants/{tenant.slug}/widgets"
        discovery = asyncio.create_task(
            racing.client.post(f"{widgets}/{widget.id}{DISCOVER}", headers=editor.headers)
        )
        async with asyncio.timeout(10):
            await server.started.wait()
        async with asyncio.timeout(5):
            meanwhile = await racing.client.get(widgets, headers=editor.headers)
        assert meanwhile.status_code == 200, meanwhile.text

        server.release.set()
        found = await discovery
        assert found.status_code == 200, found.text
        assert [t["name"] for t in found.json()["tools"]] == ["add"]
