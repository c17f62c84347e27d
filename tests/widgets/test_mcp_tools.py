"""An agent's ``mcp`` tools in a widget's configuration: kept with their defaults, refused
with the field at fault when they cannot work; their secrets set apart from the config
(write-only, encrypted at rest, audited without the value, bound to the server's origin);
and the tools of their server listed on demand (a real MCP server on loopback), with the
deployment's outbound rules, each failure a problem with a stable code. Another tenant
reaches none of it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Role, WidgetMcpSecret
from tests.chat.helpers import Resolver
from tests.factories import login, make_member, make_tenant
from tests.fakes.mcp_server import SECRET, FakeMcp
from tests.widgets.helpers import Acme, audit_entries, create, mcp_tool, url, with_tools


@pytest.fixture
async def mcp_server() -> AsyncIterator[FakeMcp]:
    async with FakeMcp() as server:
        yield server


async def test_an_mcp_tool_is_kept_with_its_defaults(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = await with_tools(client, acme, mcp_tool())

    [tool] = widget["config"]["agent"]["tools"]
    assert tool == {
        **mcp_tool(),
        "label": "Working on it…",
        "secret_header": "Authorization",
        "timeout_seconds": 10.0,
    }
    assert "secret" not in str(widget["config"]).replace("secret_header", "")


@pytest.mark.parametrize(
    ("tools", "field", "type"),
    [
        (
            [{**mcp_tool(), "allowed_tools": None}],
            "config.agent.tools.0.allowed_tools",
            "list_type",
        ),
        ([mcp_tool(allowed_tools=[])], "config.agent.tools.0.allowed_tools", "too_short"),
        ([mcp_tool(allowed_tools=["a", "a"])], "config.agent.tools.0.allowed_tools", "value_error"),
        (
            [mcp_tool(allowed_tools=["add", "drop table"])],
            "config.agent.tools.0.allowed_tools.1",
            "string_pattern_mismatch",
        ),
        ([mcp_tool(url="https://10.0.0.7/mcp")], "config.agent.tools.0.url", "outbound_refused"),
        (
            [mcp_tool(url="http://mcp.acme.example/mcp")],
            "config.agent.tools.0.url",
            "outbound_refused",
        ),
        (  # no DNS name is that long: and where its secret may go would not fit the column
            [mcp_tool(url=f"https://{'m' * 63}.{'c' * 63}.{'p' * 63}.{'x' * 63}.example/mcp")],
            "config.agent.tools.0.url",
            "outbound_refused",
        ),
        ([mcp_tool(url="ftp://mcp.acme.example")], "config.agent.tools.0.url", "url_scheme"),
        ([mcp_tool(secret_header="Host")], "config.agent.tools.0.secret_header", "value_error"),
        (
            [mcp_tool(secret_header="X Key")],
            "config.agent.tools.0.secret_header",
            "string_pattern_mismatch",
        ),
        ([mcp_tool(timeout_seconds=61)], "config.agent.tools.0.timeout_seconds", "less_than_equal"),
        ([mcp_tool(), mcp_tool(id="two")], "config.agent.tools.1.allowed_tools.0", "value"),
        (
            [
                mcp_tool(),
                {
                    "type": "http",
                    "id": "http",
                    "name": "order_status",
                    "description": "d",
                    "url": "https://tools.acme.example/x",
                },
            ],
            "config.agent.tools.1.name",
            "value",
        ),
    ],
)
async def test_mcp_tools_that_cannot_work_are_refused_with_the_field(
    client: httpx2.AsyncClient, acme: Acme, tools: list[dict[str, Any]], field: str, type: str
) -> None:
    widget = await create(client, acme)
    put = await client.put(
        url(widget, "/config"), json={"agent": {"tools": tools}}, headers=acme.matching('"1"')
    )
    assert put.status_code == 422, put.text
    assert put.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["type"]) for e in put.json()["errors"]] == [(field, type)]


async def test_a_secret_is_write_only_encrypted_and_audited_without_its_value(
    client: httpx2.AsyncClient, app: FastAPI, acme: Acme, db: AsyncSession
) -> None:
    widget = await with_tools(client, acme, mcp_tool())
    secrets = url(widget, "/mcp-secrets")

    put = await client.put(f"{secrets}/orders", json={"value": SECRET}, headers=acme.headers)

    assert put.status_code == 200, put.text
    state = put.json()
    assert state["tool_id"] == "orders"
    assert state["origin"] == "https://mcp.acme.example:443"
    listed = await client.get(secrets, headers=acme.headers)
    assert [s["tool_id"] for s in listed.json()] == ["orders"]
    shown = put.text + listed.text + (await client.get(url(widget), headers=acme.headers)).text
    assert SECRET.split()[1] not in shown
    [row] = (await db.execute(select(WidgetMcpSecret))).scalars().all()
    assert row.secret is not None
    assert SECRET.split()[1] not in row.secret
    assert app.state.secret_box.decrypt(row.secret) == SECRET
    [entry] = await audit_entries(db, acme.tenant, "widget.mcp_secret_set")
    assert SECRET.split()[1] not in str(entry.data)
    assert entry.data["tool_id"] == "orders"

    again = await client.put(
        f"{secrets}/orders", json={"value": "Bearer new"}, headers=acme.headers
    )
    assert again.status_code == 200, again.text
    assert len(await audit_entries(db, acme.tenant, "widget.mcp_secret_replaced")) == 1
    removed = await client.delete(f"{secrets}/orders", headers=acme.headers)
    assert removed.status_code == 204
    assert (await client.get(secrets, headers=acme.headers)).json() == []
    assert (await client.delete(f"{secrets}/orders", headers=acme.headers)).status_code == 204
    assert len(await audit_entries(db, acme.tenant, "widget.mcp_secret_removed")) == 1


async def test_a_secret_needs_its_tool_in_the_draft_and_a_printable_value(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = await with_tools(client, acme, mcp_tool())
    secrets = url(widget, "/mcp-secrets")

    missing = await client.put(f"{secrets}/other", json={"value": "x"}, headers=acme.headers)
    assert missing.status_code == 409
    assert missing.json()["code"] == "mcp_tool_not_in_draft"
    bad = await client.put(f"{secrets}/orders", json={"value": "a\nb"}, headers=acme.headers)
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["value"]
    bad_id = await client.put(f"{secrets}/Not%20an%20id", json={"value": "x"}, headers=acme.headers)
    assert bad_id.status_code == 422


async def test_discovery_lists_the_servers_tools_and_flags_missing_ones(
    client: httpx2.AsyncClient, acme: Acme, mcp_server: FakeMcp
) -> None:
    """Every tool but one holding a NUL character (``garbled``), which was a 500, and one
    whose name holds a bidi override (``cancel\u202eorder``), which the dashboard showed."""
    tool = mcp_tool(url=mcp_server.url, allowed_tools=["add", "order_status", "refund"])
    widget = await with_tools(client, acme, tool)
    secret = await client.put(
        url(widget, "/mcp-secrets/orders"), json={"value": SECRET}, headers=acme.headers
    )
    assert secret.status_code == 200, secret.text

    found = await client.post(url(widget, "/tools/orders/discover"), headers=acme.headers)

    assert found.status_code == 200, found.text
    body = found.json()
    assert body["tool_id"] == "orders"
    tools = {t["name"]: t for t in body["tools"]}
    assert {n: t["allowed"] for n, t in tools.items()} == {
        "add": True,
        "big": False,
        "delete_everything": False,
        "order_status": True,
        "slow": False,
    }
    assert tools["add"]["description"] == "Add two numbers."
    assert tools["add"]["input_schema"]["properties"]["a"]["type"] == "integer"
    assert body["missing_tools"] == ["refund"]
    assert mcp_server.requests
    assert all(r.get("authorization") == SECRET for r in mcp_server.requests)


async def test_discovery_failures_are_problems_with_stable_codes(
    client: httpx2.AsyncClient, app: FastAPI, acme: Acme, mcp_server: FakeMcp
) -> None:
    discover = "/tools/orders/discover"
    stale = await with_tools(client, acme, mcp_tool(url=mcp_server.url))
    put = await client.put(
        url(stale, "/mcp-secrets/orders"), json={"value": SECRET}, headers=acme.headers
    )
    assert put.status_code == 200
    moved = await client.patch(
        url(stale),
        json={"config": {"agent": {"tools": [mcp_tool(url="http://127.0.0.2:9/mcp")]}}},
        headers=acme.matching(f'"{stale["revision"]}"'),
    )
    assert moved.status_code == 200, moved.text
    refused = await client.post(url(stale, discover), headers=acme.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "mcp_secret_stale"
    assert mcp_server.requests == []

    await mcp_server.stop()
    gone = await with_tools(client, acme, mcp_tool(url=mcp_server.url, timeout_seconds=2))
    unreachable = await client.post(url(gone, discover), headers=acme.headers)
    assert unreachable.status_code == 502
    assert unreachable.headers["content-type"] == "application/problem+json"
    assert unreachable.json()["code"] == "mcp_unavailable"

    resolver = Resolver.installed(app, ["169.254.169.254"])
    internal = await with_tools(client, acme, mcp_tool())
    blocked = await client.post(url(internal, discover), headers=acme.headers)
    assert blocked.status_code == 422
    [error] = blocked.json()["errors"]
    assert error["field"] == "config.agent.tools.0.url"
    assert error["type"] == "outbound_refused"
    assert error["message"] == (
        "Kithost may not connect to this address: mcp.acme.example: not a public address"
    ), "what the name resolves to is no one's business but the server log's"
    assert resolver.asked == ["mcp.acme.example"]

    none = await client.post(url(internal, "/tools/nothing/discover"), headers=acme.headers)
    assert none.status_code == 409
    assert none.json()["code"] == "mcp_tool_not_in_draft"


async def test_another_tenant_reaches_no_secret_and_no_discovery(
    client: httpx2.AsyncClient, app: FastAPI, acme: Acme, db: AsyncSession, mcp_server: FakeMcp
) -> None:
    widget = await with_tools(client, acme, mcp_tool(url=mcp_server.url))
    secrets = url(widget, "/mcp-secrets")
    put = await client.put(f"{secrets}/orders", json={"value": SECRET}, headers=acme.headers)
    assert put.status_code == 200
    other = await make_tenant(db, "other")
    intruder = (await login(app, db, await make_member(db, other, Role.owner))).headers
    theirs = secrets.replace("/tenants/acme/", "/tenants/other/")

    for attempt in (
        client.get(secrets, headers=intruder),
        client.put(f"{secrets}/orders", json={"value": "Bearer mine"}, headers=intruder),
        client.delete(f"{secrets}/orders", headers=intruder),
        client.post(url(widget, "/tools/orders/discover"), headers=intruder),
        client.get(theirs, headers=intruder),
        client.put(f"{theirs}/orders", json={"value": "Bearer mine"}, headers=intruder),
        client.delete(f"{theirs}/orders", headers=intruder),
        client.post(
            url(widget, "/tools/orders/discover").replace("/tenants/acme/", "/tenants/other/"),
            headers=intruder,
        ),
    ):
        response = await attempt
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"

    assert mcp_server.requests == []
    [row] = (await db.execute(select(WidgetMcpSecret))).scalars().all()
    assert row.widget_id == uuid.UUID(widget["id"])
    assert app.state.secret_box.decrypt(row.secret or "") == SECRET
