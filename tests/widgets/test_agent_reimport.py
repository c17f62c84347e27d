"""Importing an export into a widget that already has tools: the export is the truth for what
it describes (the agent, its handoffs, file search, web search and MCP servers), so those
are replaced, and the secret of an MCP server no draft or published tool uses any more goes
with it (audited); the ``http`` and ``client`` tools, which no export describes, stay the
widget's and its main agent's. The answer says what became of each tool; a dry run says it
and removes nothing."""

from __future__ import annotations

from typing import Any

import httpx2
from sqlalchemy.ext.asyncio import AsyncSession

from tests.widgets.helpers import Acme, audit_entries, mcp_tool, url, with_tools

NOTIFY = {
    "type": "http",
    "id": "notify",
    "name": "notify_shop",
    "description": "Tells the shop.",
    "url": "https://tools.acme.example/notify",
}
CART = {"type": "client", "id": "cart", "name": "open_cart", "description": "Opens the cart."}
OLD_CRM = mcp_tool(id="crm", url="https://old-crm.acme.example/mcp", allowed_tools=["lookup"])
CRM_EXPORT = """
crm = HostedMCPTool(tool_config={"type": "mcp", "server_label": "crm",
                                 "server_url": "https://mcp.acme.example/mcp",
                                 "allowed_tools": ["find_order"]})
a = Agent(name="A", instructions="Help.", tools=[crm])
"""


async def secret_for(client: httpx2.AsyncClient, acme: Acme, widget: str, tool_id: str) -> None:
    put = await client.put(
        f"{widget}/mcp-secrets/{tool_id}", json={"value": "Bearer s3cr3t"}, headers=acme.headers
    )
    assert put.status_code == 200, put.text


async def secrets_of(client: httpx2.AsyncClient, acme: Acme, widget: str) -> list[str]:
    listed = await client.get(widget + "/mcp-secrets", headers=acme.headers)
    assert listed.status_code == 200, listed.text
    return [s["tool_id"] for s in listed.json()]


async def reimport(
    client: httpx2.AsyncClient, acme: Acme, widget: str, code: str, *, dry_run: bool = False
) -> dict[str, Any]:
    etag = (await client.get(widget, headers=acme.headers)).headers["ETag"]
    response = await client.post(
        widget + "/agent-import",
        json={"code": code},
        params={"dry_run": "true"} if dry_run else {},
        headers=acme.matching(etag),
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def changes(answer: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(t["id"], t["change"], t["secret"]) for t in answer["tools"]]


async def test_a_reimport_replaces_the_servers_keeps_the_http_and_client_tools_and_their_secrets_go(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    widget = url(await with_tools(client, acme, NOTIFY, CART, mcp_tool(), OLD_CRM))
    await secret_for(client, acme, widget, "orders")
    await secret_for(client, acme, widget, "crm")

    answer = await reimport(client, acme, widget, CRM_EXPORT)

    tools = answer["config"]["agent"]["tools"]
    assert [(t["id"], t["type"]) for t in tools] == [
        ("crm", "mcp"),
        ("notify", "http"),
        ("cart", "client"),
    ]
    assert tools[0]["url"] == "https://mcp.acme.example/mcp"
    assert changes(answer) == [
        ("crm", "replaced", "removed"),  # another server now: its secret was the old one's
        ("notify", "kept", None),
        ("cart", "kept", None),
        ("orders", "removed", "removed"),
    ]
    assert await secrets_of(client, acme, widget) == []
    removed = await audit_entries(db, acme.tenant, "widget.mcp_secret_removed")
    assert sorted(e.data["tool_id"] for e in removed) == ["crm", "orders"]
    draft = (await client.get(widget, headers=acme.headers)).json()["config"]["agent"]
    assert draft["tools"] == tools
    assert draft["main_tools"] is None  # the main agent uses every tool, as before


async def test_a_server_the_export_keeps_keeps_its_secret(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = url(await with_tools(client, acme, mcp_tool(id="crm", allowed_tools=["find_order"])))
    await secret_for(client, acme, widget, "crm")

    answer = await reimport(client, acme, widget, CRM_EXPORT)

    assert changes(answer) == [("crm", "unchanged", "kept")]
    assert await secrets_of(client, acme, widget) == ["crm"]


async def test_a_secret_the_published_version_uses_stays_until_a_version_without_it(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    created = await with_tools(client, acme, mcp_tool())
    widget = url(created)
    await secret_for(client, acme, widget, "orders")
    etag = (await client.get(widget, headers=acme.headers)).headers["ETag"]
    published = await client.post(widget + "/publish", headers=acme.matching(etag))
    assert published.status_code == 200, published.text

    answer = await reimport(client, acme, widget, "a = Agent(name='A', instructions='Hi.')\n")

    assert changes(answer) == [("orders", "removed", "kept_for_published")]
    assert await secrets_of(client, acme, widget) == ["orders"]  # visitors' answers use it
    assert await audit_entries(db, acme.tenant, "widget.mcp_secret_removed") == []
    etag = (await client.get(widget, headers=acme.headers)).headers["ETag"]
    again = await client.post(widget + "/publish", headers=acme.matching(etag))
    assert again.status_code == 200, again.text
    assert await secrets_of(client, acme, widget) == []
    [entry] = await audit_entries(db, acme.tenant, "widget.mcp_secret_removed")
    assert entry.data["tool_id"] == "orders"


async def test_a_dry_run_says_which_secrets_would_go_and_removes_none(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    widget = url(await with_tools(client, acme, CART, mcp_tool()))
    await secret_for(client, acme, widget, "orders")

    answer = await reimport(client, acme, widget, CRM_EXPORT, dry_run=True)

    assert changes(answer) == [
        ("crm", "added", None),
        ("cart", "kept", None),
        ("orders", "removed", "removed"),
    ]
    assert await secrets_of(client, acme, widget) == ["orders"]
    assert await audit_entries(db, acme.tenant, "widget.mcp_secret_removed") == []
    draft = (await client.get(widget, headers=acme.headers)).json()["config"]["agent"]
    assert [t["id"] for t in draft["tools"]] == ["cart", "orders"]


async def test_kept_tools_stay_the_main_agents_beside_the_exports_handoffs(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = url(await with_tools(client, acme, NOTIFY, CART))
    code = (
        "billing = Agent(name='Billing', instructions='Bills.')\n"
        "main = Agent(name='Main', instructions='Route.', handoffs=[billing])\n"
    )

    agent = (await reimport(client, acme, widget, code))["config"]["agent"]

    assert [t["id"] for t in agent["tools"]] == ["notify", "cart"]
    assert agent["main_tools"] == ["notify", "cart"]
    assert [(h["id"], h["tools"]) for h in agent["handoffs"]] == [("billing", [])]


async def test_an_imported_server_gets_an_id_no_kept_tool_has(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = url(await with_tools(client, acme, {**CART, "id": "crm"}))

    answer = await reimport(client, acme, widget, CRM_EXPORT)

    assert [(t["id"], t["type"]) for t in answer["config"]["agent"]["tools"]] == [
        ("crm-2", "mcp"),
        ("crm", "client"),
    ]
