"""An agent's ``http`` tools in a widget's configuration: kept with their defaults, the
widget's tool secret made with the first one and shown in that answer only (rotatable,
encrypted at rest, audited without the secret), and refused with the field at fault when
they cannot work (a URL Kithost may not call, plain HTTP to a public name, two tools with
one name, arguments that are not a JSON Schema of an object)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Widget
from tests.widgets.helpers import Acme, audit_entries, create, refused_tools, url


def http_tool(**extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "id": "orders",
        "name": "lookup_order",
        "description": "The status of an order.",
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
        "url": "https://tools.acme.example/order",
        **extra,
    }


async def test_the_first_http_tool_makes_the_tool_secret_shown_once(
    client: httpx2.AsyncClient, app: FastAPI, acme: Acme, db: AsyncSession
) -> None:
    widget = await create(client, acme)
    assert widget.json()["has_tool_secret"] is False
    assert widget.json()["new_tool_secret"] is None

    put = await client.put(
        url(widget, "/config"),
        json={"agent": {"tools": [http_tool()]}},
        headers=acme.matching(widget.headers["ETag"]),
    )

    assert put.status_code == 200, put.text
    body = put.json()
    [tool] = body["config"]["agent"]["tools"]
    assert tool == {
        **http_tool(),
        "label": "Working on it…",
        "method": "POST",
        "timeout_seconds": 10.0,
        "max_response_bytes": 65536,
    }
    secret = body["new_tool_secret"]
    assert secret.startswith("kts_")
    assert body["has_tool_secret"] is True
    assert put.headers["ETag"] == f'"{body["revision"]}"'
    stored = await db.get(Widget, uuid.UUID(body["id"]))
    assert stored is not None
    assert stored.tool_secret is not None
    assert secret not in stored.tool_secret
    assert app.state.secret_box.decrypt(stored.tool_secret) == secret
    [entry] = await audit_entries(db, acme.tenant, "widget.tool_secret_created")
    assert secret not in str(entry.data)

    again = await client.patch(
        url(widget),
        json={"config": {"agent": {"tools": [http_tool(name="order_status")]}}},
        headers=acme.matching(put.headers["ETag"]),
    )
    assert again.status_code == 200, again.text
    assert again.json()["new_tool_secret"] is None
    read = await client.get(url(widget), headers=acme.headers)
    assert read.json()["new_tool_secret"] is None

    rotated = await client.post(url(widget, "/tool-secret"), headers=acme.headers)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["tool_secret"]
    assert new.startswith("kts_")
    assert new != secret
    await db.refresh(stored)
    assert app.state.secret_box.decrypt(stored.tool_secret or "") == new
    assert await audit_entries(db, acme.tenant, "widget.tool_secret_rotated")


@pytest.mark.parametrize(
    ("tools", "field", "type"),
    [
        (
            [http_tool(url="https://10.0.0.7/order")],
            "config.agent.tools.0.url",
            "outbound_refused",
        ),
        (
            [http_tool(url="https://169.254.169.254/latest")],
            "config.agent.tools.0.url",
            "outbound_refused",
        ),
        (
            [http_tool(url="http://tools.acme.example/order")],
            "config.agent.tools.0.url",
            "outbound_refused",
        ),
        (
            [http_tool(), http_tool(id="other")],
            "config.agent.tools.1.name",
            "value",
        ),
        (
            [http_tool(parameters={"type": "string"})],
            "config.agent.tools.0.parameters",
            "value_error",
        ),
        (
            [http_tool(parameters={"type": "object", "properties": 3})],
            "config.agent.tools.0.parameters",
            "value_error",
        ),
        ([http_tool(name="look up")], "config.agent.tools.0.name", "string_pattern_mismatch"),
        (
            [http_tool(timeout_seconds=61)],
            "config.agent.tools.0.timeout_seconds",
            "less_than_equal",
        ),
        ([http_tool(method="GET")], "config.agent.tools.0.method", "enum"),
    ],
)
async def test_http_tools_that_cannot_work_are_refused_with_the_field(
    client: httpx2.AsyncClient, acme: Acme, tools: list[dict[str, Any]], field: str, type: str
) -> None:
    widget, errors = await refused_tools(client, acme, tools)
    assert errors == [(field, type)]
    kept = await client.get(url(widget), headers=acme.headers)
    assert kept.json()["has_tool_secret"] is False


async def test_http_tools_work_with_chat_completions_and_loopback_in_development(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    """Function tools need no hosted tool support; loopback is open outside production."""
    widget = await create(client, acme)
    tools = [http_tool(url="http://127.0.0.1:9/order"), http_tool(id="b", name="other")]
    put = await client.put(
        url(widget, "/config"),
        json={"agent": {"model_api": "chat_completions", "tools": tools}},
        headers=acme.matching('"1"'),
    )
    assert put.status_code == 200, put.text
