"""A tool's URL holding a credential (an MCP server's ``?token=…``, an endpoint's
``/key/abc123/``): kept whole for Kithost to connect with, and hidden in every read of the
configuration (the draft, versions, an import's answer, the audit log), so a client with
only ``widgets:read`` never sees it. A configuration saved back as read keeps the URL; one
still holding the hidden mark for another URL is 422 ``url_hidden`` on the tool's url."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import AuditLogEntry, Role, Widget
from kithost.widgets.redaction import HIDDEN
from tests.factories import login, make_member
from tests.widgets.helpers import Acme, audit_entries, create, mcp_tool, url, with_tools

TOKEN = "tok9f8e7d6c5b4a3"
MCP = mcp_tool(url=f"https://mcp.acme.example/sse?token={TOKEN}&profile=shop")
HTTP = {
    "type": "http",
    "id": "refund",
    "name": "refund",
    "description": "Refunds an order.",
    "url": "https://tools.acme.example/key/abc123/refund",
}
SHOWN = [
    f"https://mcp.acme.example/sse?token={HIDDEN}&profile=shop",
    f"https://tools.acme.example/key/{HIDDEN}/refund",
]


def urls(config: dict[str, Any]) -> list[str]:
    return [tool["url"] for tool in config["agent"]["tools"]]


async def test_a_credential_in_a_tools_url_is_hidden_from_every_read(
    client: httpx2.AsyncClient, app: FastAPI, acme: Acme, db: AsyncSession
) -> None:
    saved = await with_tools(client, acme, MCP, HTTP)
    widget = url(saved)
    assert urls(saved["config"]) == SHOWN
    published = await client.post(
        widget + "/publish", headers=acme.matching(f'"{saved["revision"]}"')
    )
    assert published.status_code == 200, published.text
    viewer = await login(app, db, await make_member(db, acme.tenant, Role.viewer))

    reads = [
        await client.get(widget, headers=viewer.headers),
        await client.get(url(saved, "/versions/1"), headers=viewer.headers),
        await client.get("/api/v1/tenants/acme/widgets", headers=viewer.headers),
        await client.get("/api/v1/tenants/acme/audit", headers=acme.headers),
    ]

    for read in reads:
        assert read.status_code == 200, read.text
        assert TOKEN not in read.text
        assert "abc123" not in read.text
    assert urls(reads[0].json()["config"]) == SHOWN
    assert urls(reads[1].json()["config"]) == SHOWN
    for entry in (await db.execute(AuditLogEntry.__table__.select())).all():
        assert TOKEN not in str(entry.data)
    stored = await db.get_one(Widget, uuid.UUID(saved["id"]))
    assert urls(stored.draft) == [MCP["url"], HTTP["url"]]  # what Kithost connects to


async def test_a_config_saved_back_as_read_keeps_the_urls(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    saved = await with_tools(client, acme, MCP, HTTP)
    read = saved["config"]
    read["agent"]["instructions"] = "Be brief."

    put = await client.put(
        url(saved, "/config"), json=read, headers=acme.matching(f'"{saved["revision"]}"')
    )

    assert put.status_code == 200, put.text
    assert urls(put.json()["config"]) == SHOWN
    stored = await db.get_one(Widget, uuid.UUID(saved["id"]))
    assert stored.draft["agent"]["instructions"] == "Be brief."
    assert urls(stored.draft) == [MCP["url"], HTTP["url"]]


async def test_a_hidden_mark_that_stands_for_no_stored_url_is_refused(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    saved = await with_tools(client, acme, MCP)
    as_read = {**MCP, "url": SHOWN[0]}
    elsewhere = {**MCP, "url": f"https://other.acme.example/sse?token={HIDDEN}"}
    fresh = await create(client, acme)
    for widget, etag, tool in (
        (url(saved), f'"{saved["revision"]}"', elsewhere),  # another server: not its token
        (url(fresh), fresh.headers["ETag"], as_read),  # a widget that never had it
    ):
        put = await client.put(
            widget + "/config", json={"agent": {"tools": [tool]}}, headers=acme.matching(etag)
        )
        assert put.status_code == 422, put.text
        assert [(e["field"], e["type"]) for e in put.json()["errors"]] == [
            ("config.agent.tools.0.url", "url_hidden")
        ]


async def test_an_imported_servers_credentials_are_hidden_in_the_answer(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    widget = url(await create(client, acme))
    code = (
        'crm = HostedMCPTool(tool_config={"server_label": "crm", "allowed_tools": ["find"],'
        f' "server_url": "https://mcp.acme.example/sse?token={TOKEN}"}})\n'
        "a = Agent(name='A', tools=[crm])\n"
    )

    response = await client.post(
        widget + "/agent-import", json={"code": code}, headers=acme.matching('"1"')
    )

    assert response.status_code == 200, response.text
    assert TOKEN not in response.text
    assert urls(response.json()["config"]) == [f"https://mcp.acme.example/sse?token={HIDDEN}"]


async def test_a_new_token_is_audited_without_showing_it(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    saved = await with_tools(client, acme, MCP)
    rotated = {**MCP, "url": MCP["url"].replace(TOKEN, "tok0a1b2c3d4e5f6")}

    put = await client.put(
        url(saved, "/config"),
        json={"agent": {"tools": [rotated]}},
        headers=acme.matching(f'"{saved["revision"]}"'),
    )

    assert put.status_code == 200, put.text
    assert put.json()["revision"] == saved["revision"] + 1
    entries = await audit_entries(db, acme.tenant, "widget.updated")
    assert entries[-1].data == {"before": {}, "after": {}, "hidden_changed": True}
    stored = await db.get_one(Widget, uuid.UUID(saved["id"]))
    assert urls(stored.draft) == [rotated["url"]]
