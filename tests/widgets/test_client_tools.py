"""An agent's ``client`` tools (functions the host page implements) in a widget's
configuration: kept with their defaults, no tool secret (nothing is signed), published to
the loader as name and timeout only, and refused with the field at fault when they cannot
work (a name another tool has, arguments that are not a JSON Schema of an object, a
timeout out of range)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.widgets.config import MAX_SCHEMA_DEPTH, WidgetConfig
from tests.visitor.helpers import ORIGIN, config_url, make_widget
from tests.widgets.helpers import Acme, create, refused_tools, url


def client_tool(**extra: Any) -> dict[str, Any]:
    return {
        "type": "client",
        "id": "cart",
        "name": "get_cart",
        "description": "The visitor's shopping cart.",
        "parameters": {"type": "object", "properties": {"currency": {"type": "string"}}},
        **extra,
    }


async def test_a_client_tool_is_kept_with_its_defaults_and_needs_no_secret(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = await create(client, acme)
    put = await client.put(
        url(widget, "/config"),
        json={"agent": {"model_api": "chat_completions", "tools": [client_tool()]}},
        headers=acme.matching(widget.headers["ETag"]),
    )

    assert put.status_code == 200, put.text
    body = put.json()
    [tool] = body["config"]["agent"]["tools"]
    assert tool == {**client_tool(), "label": "Working on it…", "timeout_seconds": 10.0}
    assert body["has_tool_secret"] is False
    assert body["new_tool_secret"] is None


async def test_the_loader_sees_client_tools_by_name_and_timeout_only(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    tools = [client_tool(timeout_seconds=2.5), client_tool(id="b", name="pick_size")]
    config = WidgetConfig.model_validate(
        {"agent": {"instructions": "Secret sauce.", "tools": tools}}
    )
    widget = await make_widget(db, config=config)

    response = await client.get(config_url(widget), headers={"Origin": ORIGIN})

    assert response.status_code == 200, response.text
    public = response.json()["config"]
    assert public["client_tools"] == {"get_cart": 2.5, "pick_size": 10.0}
    assert "agent" not in public
    assert "Secret sauce." not in response.text
    assert "shopping cart" not in response.text


@pytest.mark.parametrize(
    ("tools", "field", "type"),
    [
        ([client_tool(), client_tool(id="other")], "config.agent.tools.1.name", "value"),
        (
            [
                {
                    "type": "http",
                    "id": "orders",
                    "name": "get_cart",
                    "description": "Orders.",
                    "url": "https://tools.acme.example/order",
                },
                client_tool(),
            ],
            "config.agent.tools.1.name",
            "value",
        ),
        ([client_tool(), client_tool(name="other")], "config.agent.tools.1.id", "value"),
        (
            [client_tool(parameters={"type": "string"})],
            "config.agent.tools.0.parameters",
            "value_error",
        ),
        (
            [client_tool(parameters={"type": "object", "properties": 3})],
            "config.agent.tools.0.parameters",
            "value_error",
        ),
        ([client_tool(name="get cart")], "config.agent.tools.0.name", "string_pattern_mismatch"),
        ([client_tool(description="")], "config.agent.tools.0.description", "string_too_short"),
        (
            [client_tool(timeout_seconds=0)],
            "config.agent.tools.0.timeout_seconds",
            "greater_than",
        ),
        (
            [client_tool(timeout_seconds=121)],
            "config.agent.tools.0.timeout_seconds",
            "less_than_equal",
        ),
        ([client_tool(url="https://x.example")], "config.agent.tools.0.url", "extra_forbidden"),
    ],
)
async def test_client_tools_that_cannot_work_are_refused_with_the_field(
    client: httpx2.AsyncClient, acme: Acme, tools: list[dict[str, Any]], field: str, type: str
) -> None:
    _, errors = await refused_tools(client, acme, tools)
    assert errors == [(field, type)]


def nested(depth: int) -> str:
    """An arguments schema whose one property's ``items`` nest ``depth`` deep."""
    return (
        '{"type": "object", "properties": {"a": ' + '{"items": ' * depth + "{}" + "}" * (depth + 2)
    )


async def test_arguments_nested_within_the_limit_are_kept(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = url(await create(client, acme))
    tools = json.dumps({"agent": {"tools": [client_tool(parameters="ARGS")]}})
    put = await client.put(
        widget + "/config",
        content=tools.replace('"ARGS"', nested(MAX_SCHEMA_DEPTH - 4)),
        headers={**acme.matching('"1"'), "content-type": "application/json"},
    )
    assert put.status_code == 200, put.text


@pytest.mark.parametrize(
    "parameters",
    [
        '{"type": "object", "default": NaN}',
        '{"type": "object", "examples": [{"x": Infinity}]}',
        '{"type": "object", "default": {"x": -Infinity}}',
        nested(40),
    ],
)
async def test_arguments_that_are_no_json_schema_are_refused_with_the_field(
    client: httpx2.AsyncClient, acme: Acme, parameters: str
) -> None:
    """Python reads ``NaN`` and ``Infinity`` in a body, which no JSON holds (the model's API
    and a browser reading the config back would refuse it); a schema nested deeper than
    ``MAX_SCHEMA_DEPTH`` is none a model is given either (checking one 900 deep ran out of
    stack: a 500, or a 400 or 422 by the depth of the caller's stack)."""
    widget = url(await create(client, acme))
    tools = json.dumps({"agent": {"tools": [client_tool(parameters="ARGS")]}})
    put = await client.put(
        widget + "/config",
        content=tools.replace('"ARGS"', parameters),
        headers={**acme.matching('"1"'), "content-type": "application/json"},
    )
    assert put.status_code == 422, put.text
    assert [(e["field"], e["type"]) for e in put.json()["errors"]] == [
        ("config.agent.tools.0.parameters", "value_error")
    ]
