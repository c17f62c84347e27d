"""A widget's configuration over REST: every option kept as given, invalid ones named by
their JSON path and rule, and the PATCH merge semantics."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.widgets.config import WidgetConfig
from tests.widgets.helpers import EVERY_OPTION, Acme, create, hosted_widget, url

DEFAULTS = WidgetConfig().model_dump(mode="json")

EVERYTHING: dict[str, Any] = {
    "mode": "hosted",
    "placement": "direct",
    "chatkit": EVERY_OPTION,
    "launcher": {
        "position": "bottom-left",
        "label": "Ask Acme",
        "icon": "lucide:message-circle",
        "background": "#0f766e",
        "foreground": "#fff",
        "open_on_load": True,
        "prefetch": True,
    },
    "agent": {
        "model": "gpt-4.1",
        "instructions": "You help Acme's customers with their orders.",
        "base_url": "https://llm.acme.example/v1",
        "model_api": "chat_completions",
        "temperature": 0.3,
        "max_output_tokens": 2048,
        "reasoning_effort": "medium",
        "messages_per_user_per_day": 200,
        "tools": [],
        "guardrails": {
            "max_input_length": 4000,
            "refused_topics": ["politics"],
            "moderation": False,
            "refusal_message": "I can only help with orders.",
        },
        "limits": {"max_turns": 4, "max_tool_calls": 6, "max_seconds": 90},
        "name": "Orders desk",
        "handoffs": [
            {
                "id": "billing",
                "name": "Billing",
                "description": "Invoices and refunds.",
                "instructions": "You answer billing questions.",
                "model": "gpt-4.1-mini",
                "temperature": 0.1,
                "max_output_tokens": 500,
                "reasoning_effort": None,
                "tools": [],
                "hand_back": False,
            }
        ],
        "main_tools": None,
    },
    "hosted": {
        "workflow_id": "wf_68df4b13_acme",
        "version": "3",
        "state_variables": ["customer_tier", "page"],
        "chatkit_configuration": {
            "automatic_thread_titling": {"enabled": False},
            "file_upload": {"enabled": True, "max_file_size": 20, "max_files": 5},
            "history": {"enabled": True, "recent_threads": 30},
        },
        "expires_after_seconds": 900,
        "max_requests_per_minute": 60,
    },
    "actions": {
        "order.open": {"kind": "open_url", "url": "https://shop.acme.example/orders/{order_id}"},
        "order.ask": {"kind": "send_message", "text": "Where is order {order_id}?"},
        "cart.add": {"kind": "forward"},
        "noop": {"kind": "ignore"},
    },
    "require_identity": True,
}


async def test_every_option_comes_back_as_it_was_put(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    assert set(EVERYTHING) == set(DEFAULTS), "set every option group"
    assert all(EVERYTHING[group] != DEFAULTS[group] for group in DEFAULTS)
    widget = await hosted_widget(client, acme, db)
    put = await client.put(widget + "/config", json=EVERYTHING, headers=acme.matching('"2"'))
    assert (put.status_code, put.headers["ETag"]) == (200, '"3"'), put.text
    assert put.json()["config"] == EVERYTHING
    assert (await client.get(widget, headers=acme.headers)).json()["config"] == EVERYTHING

    published = await client.post(widget + "/publish", headers=acme.matching('"3"'))
    assert published.status_code == 200, published.text
    version = await client.get(widget + "/versions/1", headers=acme.headers)
    assert version.json()["config"] == EVERYTHING


async def widget_with_everything(client: httpx2.AsyncClient, acme: Acme, db: AsyncSession) -> str:
    """A hosted widget whose draft is :data:`EVERYTHING` (at revision 3)."""
    widget = await hosted_widget(client, acme, db)
    put = await client.put(widget + "/config", json=EVERYTHING, headers=acme.matching('"2"'))
    assert put.status_code == 200, put.text
    return widget


async def test_put_replaces_the_whole_draft(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    widget = await widget_with_everything(client, acme, db)
    put = await client.put(
        widget + "/config", json={"placement": "direct"}, headers=acme.matching('"3"')
    )
    assert put.json()["config"] == {**DEFAULTS, "placement": "direct"}


async def test_patch_merges_into_the_draft(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    widget = await widget_with_everything(client, acme, db)
    patch = {
        "launcher": {"label": "Help"},
        "agent": {"temperature": None},
        "chatkit": {"locale": None, "theme": {"radius": "sharp"}},
        "actions": {"noop": None, "new": {"kind": "forward"}},
    }
    patched = await client.patch(widget, json={"config": patch}, headers=acme.matching('"3"'))
    assert patched.status_code == 200, patched.text
    config = patched.json()["config"]
    assert config["launcher"] == {**EVERYTHING["launcher"], "label": "Help"}
    assert config["agent"] == {**EVERYTHING["agent"], "temperature": None}
    chatkit = {k: v for k, v in EVERY_OPTION.items() if k != "locale"}
    assert config["chatkit"] == {**chatkit, "theme": {**chatkit["theme"], "radius": "sharp"}}
    assert config["actions"] == {
        **{k: v for k, v in EVERYTHING["actions"].items() if k != "noop"},
        "new": {"kind": "forward"},
    }
    unchanged = {"mode", "placement", "hosted", "require_identity"}
    assert {k: config[k] for k in unchanged} == {k: EVERYTHING[k] for k in unchanged}

    # Self-hosted again, its agent would call its base_url: that needs the widget's model key.
    back: dict[str, Any] = {"mode": None, "hosted": None}
    keyless = await client.patch(widget, json={"config": back}, headers=acme.matching('"4"'))
    assert (keyless.status_code, keyless.json()["code"]) == (422, "model_key_required")
    back["agent"] = {"base_url": None}
    reset = await client.patch(widget, json={"config": back}, headers=acme.matching('"4"'))
    assert (reset.json()["config"]["mode"], reset.json()["config"]["hosted"]) == (
        "self_hosted",
        None,
    )


INVALID = [
    ({"chatkit": {"theme": {"radius": "round-ish"}}}, "config.chatkit.theme.radius", "enum"),
    ({"chatkit": {"api": {"url": "https://x"}}}, "config.chatkit", "additionalProperties"),
    ({"launcher": {"background": "teal"}}, "config.launcher.background", "string_pattern_mismatch"),
    ({"agent": {"temperature": 2.5}}, "config.agent.temperature", "less_than_equal"),
    (
        {"hosted": {"workflow_id": "workflow-42"}},
        "config.hosted.workflow_id",
        "string_pattern_mismatch",
    ),
    (
        {"actions": {"open": {"kind": "open_url", "url": "javascript:alert(1)"}}},
        "config.actions.open.url",
        "value_error",
    ),
    ({"actions": {"say": {"kind": "send_message"}}}, "config.actions.say.text", "missing"),
    ({"mode": "hosted"}, "config", "value_error"),
    ({"colour": "red"}, "config.colour", "extra_forbidden"),
]


@pytest.mark.parametrize(("config", "field", "rule"), INVALID)
async def test_an_invalid_configuration_is_refused_by_path_and_rule(
    client: httpx2.AsyncClient, acme: Acme, config: dict[str, Any], field: str, rule: str
) -> None:
    widget = url(await create(client, acme))
    for method, path, body in [
        ("PUT", "/config", config),
        ("PATCH", "", {"config": config}),
    ]:
        response = await client.request(
            method, widget + path, json=body, headers=acme.matching('"1"')
        )
        assert response.status_code == 422, (method, response.text)
        problem = response.json()
        assert problem["code"] == "validation_failed"
        assert [(e["field"], e["type"]) for e in problem["errors"]] == [(field, rule)]
    got = await client.get(widget, headers=acme.headers)
    assert (got.headers["ETag"], got.json()["config"]) == ('"1"', DEFAULTS)


async def test_a_configuration_that_is_not_an_object_is_refused(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = url(await create(client, acme))
    response = await client.put(widget + "/config", json=[], headers=acme.matching('"1"'))
    assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "config")


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"NaN", b"Infinity"])
async def test_a_number_json_cannot_hold_is_refused(
    client: httpx2.AsyncClient, acme: Acme, number: bytes
) -> None:
    """Python reads ``1e400`` as infinity (and ``NaN``, ``Infinity`` as such): it was stored
    as null, and the draft failed only when published."""
    widget = url(await create(client, acme))
    body = b'{"chatkit": {"composer": {"attachments": {"enabled": true, "maxCount": %s}}}}'
    response = await client.put(
        widget + "/config",
        content=body % number,
        headers={**acme.matching('"1"'), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["type"]) == (
        "config.chatkit.composer.attachments.maxCount",
        "type",
    )
    got = await client.get(widget, headers=acme.headers)
    assert (got.headers["ETag"], got.json()["config"]) == ('"1"', DEFAULTS)
