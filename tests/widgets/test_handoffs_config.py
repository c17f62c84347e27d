"""An agent's handoffs in a widget's configuration: kept with their defaults; refused with
the field at fault when ids or names repeat, a tool they name does not exist, a function
tool takes a handoff's name, or there are too many."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from tests.widgets.helpers import Acme, create, url

WEB = {"type": "web_search", "id": "web"}
PAGE = {
    "type": "client",
    "id": "page",
    "name": "open_cart",
    "description": "Opens the cart.",
}
DOCS = {
    "type": "mcp",
    "id": "docs",
    "url": "https://mcp.acme.example/mcp",
    "allowed_tools": ["search_docs"],
}
ORDERS = {
    "type": "http",
    "id": "orders",
    "name": "lookup_order",
    "description": "An order's status.",
    "url": "https://tools.acme.example/order",
}


def member(agent_id: str = "billing", **fields: Any) -> dict[str, Any]:
    return {"id": agent_id, "name": agent_id.title(), "instructions": "You help.", **fields}


async def put_agent(
    client: httpx2.AsyncClient, acme: Acme, agent: dict[str, Any]
) -> httpx2.Response:
    widget = await create(client, acme)
    return await client.put(
        url(widget, "/config"), json={"agent": agent}, headers=acme.matching('"1"')
    )


async def test_handoffs_are_kept_with_their_defaults(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    agent = {
        "name": "Triage",
        "tools": [WEB],
        "main_tools": [],
        "handoffs": [member(description="Invoices.", tools=["web"], model="gpt-4.1")],
    }
    put = await put_agent(client, acme, agent)
    assert put.status_code == 200, put.text
    shown = put.json()["config"]["agent"]
    assert (shown["name"], shown["main_tools"]) == ("Triage", [])
    assert shown["handoffs"] == [
        {
            **member(description="Invoices.", tools=["web"], model="gpt-4.1"),
            "temperature": None,
            "max_output_tokens": None,
            "reasoning_effort": None,
            "hand_back": True,
        }
    ]


@pytest.mark.parametrize(
    ("agent", "field", "type"),
    [
        ({"handoffs": [member(), member()]}, "config.agent.handoffs.1.id", "value"),
        ({"handoffs": [member("main")]}, "config.agent.handoffs.0.id", "reserved"),
        (
            {"handoffs": [member("billing"), member("bills", name="BILLING")]},
            "config.agent.handoffs.1.name",
            "name_taken",
        ),
        ({"handoffs": [member(name="Assistant")]}, "config.agent.handoffs.0.name", "name_taken"),
        (
            {"handoffs": [member(tools=["web"])]},
            "config.agent.handoffs.0.tools.0",
            "tool_not_found",
        ),
        (
            {"tools": [WEB], "handoffs": [member(tools=["web", "web"])]},
            "config.agent.handoffs.0.tools.1",
            "value",
        ),
        ({"tools": [WEB], "main_tools": ["nope"]}, "config.agent.main_tools.0", "tool_not_found"),
        (
            {"tools": [{**ORDERS, "name": "transfer_to_billing"}], "handoffs": [member()]},
            "config.agent.handoffs.0.id",
            "name_taken",
        ),
        (
            {"tools": [{**ORDERS, "name": "transfer_to_main"}], "handoffs": [member()]},
            "config.agent.tools.0.name",
            "name_taken",
        ),
        (
            {"tools": [{**PAGE, "name": "transfer_to_billing"}], "handoffs": [member()]},
            "config.agent.handoffs.0.id",
            "name_taken",
        ),
        (
            {
                "tools": [{**DOCS, "allowed_tools": ["search_docs", "transfer_to_main"]}],
                "handoffs": [member()],
            },
            "config.agent.tools.0.allowed_tools.1",
            "name_taken",
        ),
        ({"handoffs": [member(f"a{n}") for n in range(9)]}, "config.agent.handoffs", "too_long"),
        (
            {"handoffs": [member("Billing!")]},
            "config.agent.handoffs.0.id",
            "string_pattern_mismatch",
        ),
        ({"handoffs": [member(instructions="")]}, "config.agent.handoffs.0.instructions", None),
    ],
)
async def test_handoffs_that_cannot_work_are_refused_with_the_field(
    client: httpx2.AsyncClient, acme: Acme, agent: dict[str, Any], field: str, type: str | None
) -> None:
    put = await put_agent(client, acme, agent)
    assert put.status_code == 422, put.text
    assert put.headers["content-type"] == "application/problem+json"
    [error] = put.json()["errors"]
    assert error["field"] == field
    if type is not None:
        assert error["type"] == type


@pytest.mark.parametrize("tool", [ORDERS, DOCS], ids=["http", "mcp"])
async def test_a_tool_url_with_credentials_is_refused(
    client: httpx2.AsyncClient, acme: Acme, tool: dict[str, Any]
) -> None:
    """They would be kept in every version of the config and shown wherever it is."""
    sent = {**tool, "url": "https://bot:hunter2@tools.acme.example/x"}
    put = await put_agent(client, acme, {"tools": [sent]})
    assert put.status_code == 422, put.text
    [error] = put.json()["errors"]
    assert (error["field"], error["type"]) == ("config.agent.tools.0.url", "url_userinfo")
    assert "hunter2" not in put.text


async def test_a_handoff_agent_with_a_tool_needs_a_tool_secret_like_the_main_agent(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    put = await put_agent(
        client, acme, {"tools": [ORDERS], "main_tools": [], "handoffs": [member(tools=["orders"])]}
    )
    assert put.status_code == 200, put.text
    assert put.json()["new_tool_secret"].startswith("kts_")
