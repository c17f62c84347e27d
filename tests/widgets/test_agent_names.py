"""Names and labels visitors read of a widget's agents and tools (the agents' names, shown as
"Transferred to …"; a tool's label while it runs; the launcher's label) are refused with a
control, bidi or other invisible character, as every name is (422 ``invisible_character``
on the field; a NUL character ``nul_character``); an export's agent so named keeps its
variable's name, listed."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from tests.widgets.helpers import Acme, create, mcp_tool, url

CART = {"type": "client", "id": "cart", "name": "open_cart", "description": "Opens the cart."}
BILLING = {"id": "billing", "name": "Billing", "instructions": "Bills."}


def config(
    *, name: str = "Shop", handoff: str = "Billing", label: str = "Opening…", launcher: str = "Chat"
) -> dict[str, Any]:
    return {
        "launcher": {"label": launcher},
        "agent": {
            "name": name,
            "tools": [{**CART, "label": label}, mcp_tool()],
            "handoffs": [{**BILLING, "name": handoff}],
        },
    }


@pytest.mark.parametrize(
    ("given", "field", "type"),
    [
        ({"name": "Shop\u202eevil"}, "config.agent.name", "invisible_character"),
        ({"name": "Sh\u200bop"}, "config.agent.name", "invisible_character"),
        ({"handoff": "Bill\u2066ing"}, "config.agent.handoffs.0.name", "invisible_character"),
        ({"label": "Opening\x07"}, "config.agent.tools.0.label", "invisible_character"),
        ({"launcher": "Chat\u202d"}, "config.launcher.label", "invisible_character"),
        ({"name": "Shop\x00"}, "config.agent.name", "nul_character"),
    ],
)
async def test_a_name_visitors_read_holds_no_invisible_character(
    client: httpx2.AsyncClient, acme: Acme, given: dict[str, str], field: str, type: str
) -> None:
    widget = await create(client, acme)

    put = await client.put(
        url(widget, "/config"), json=config(**given), headers=acme.matching(widget.headers["ETag"])
    )

    assert put.status_code == 422, put.text
    assert put.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["type"]) for e in put.json()["errors"]] == [(field, type)]


async def test_names_in_other_scripts_are_kept(client: httpx2.AsyncClient, acme: Acme) -> None:
    widget = await create(client, acme)
    given = config(name="客服", handoff="فوترة", label="処理中…", launcher="Hilfe 💬")

    put = await client.put(
        url(widget, "/config"), json=given, headers=acme.matching(widget.headers["ETag"])
    )

    assert put.status_code == 200, put.text
    agent = put.json()["config"]["agent"]
    assert (agent["name"], agent["handoffs"][0]["name"]) == ("客服", "فوترة")


async def test_an_exports_agent_named_with_a_bidi_override_keeps_its_variables_name(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = await create(client, acme)
    code = (
        "billing = Agent(name='Bill\\u202eing', instructions='Bills.')\n"
        "support = Agent(name='Sup\\u200bport', instructions='Helps.', handoffs=[billing])\n"
    )

    response = await client.post(
        url(widget, "/agent-import"),
        json={"code": code},
        params={"dry_run": "true"},
        headers=acme.headers,
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    agent = answer["config"]["agent"]
    assert (agent["name"], agent["handoffs"][0]["name"]) == ("support", "billing")
    whats = [s["what"] for s in answer["not_carried"]]
    assert {"support: its name", "billing: its name"} <= set(whats)
