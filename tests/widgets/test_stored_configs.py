"""Configurations stored under older rules (a draft or a version saved before a rule grew
stricter): the dashboard's reads serve them as stored, never a 500 nor a widget left out,
and the draft is refused as any draft is (422 naming the field) until it is fixed."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Widget, WidgetVersion
from kithost.widgets.config import MAX_SCHEMA_DEPTH
from tests.widgets.helpers import WIDGETS, Acme, create, url


def nested(levels: int) -> dict[str, Any]:
    """An arguments schema with objects nested ``levels`` deep."""
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(levels - 1):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def outdated(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as today's rules no longer take it: a tool's arguments nested too deep, a
    value out of today's range and an option that no longer exists."""
    tool = {
        "type": "client",
        "id": "lookup",
        "name": "lookup",
        "description": "Looks an order up.",
        "parameters": nested(MAX_SCHEMA_DEPTH + 1),
    }
    agent = {**config["agent"], "tools": [tool], "temperature": 7}
    return {**config, "agent": agent, "colour": "teal"}


async def test_a_stored_config_that_no_longer_validates_is_read_as_stored(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    created = await create(client, acme)
    widget = url(created)
    assert (await client.post(widget + "/publish", headers=acme.matching('"1"'))).status_code == 200
    stored = await db.get_one(Widget, uuid.UUID(created.json()["id"]))
    old = outdated(stored.draft)
    stored.draft = old
    db.add(
        WidgetVersion(tenant_id=acme.tenant.id, widget_id=stored.id, number=2, config=old, note="")
    )
    stored.published_version = 2
    await db.flush()
    etag = f'"{stored.revision}"'

    got = await client.get(widget, headers=acme.headers)
    assert (got.status_code, got.headers["ETag"]) == (200, etag), got.text
    assert got.json()["config"] == old
    listed = await client.get(WIDGETS, headers=acme.headers)
    assert listed.status_code == 200, listed.text
    assert [w["config"] for w in listed.json()] == [old]
    versions = await client.get(widget + "/versions", headers=acme.headers)
    assert [v["number"] for v in versions.json()] == [2, 1]
    version = await client.get(widget + "/versions/2", headers=acme.headers)
    assert (version.status_code, version.json()["config"]) == (200, old)

    refused = [
        await client.post(widget + "/publish", headers=acme.matching(etag)),
        await client.patch(
            widget, json={"config": {"launcher": {"label": "Hi"}}}, headers=acme.matching(etag)
        ),
        await client.post(widget + "/versions/2/restore", headers=acme.matching(etag)),
    ]
    for response in refused:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert {(e["field"], e["type"]) for e in response.json()["errors"]} == {
            ("config.agent.tools.0.parameters", "value_error"),
            ("config.agent.temperature", "less_than_equal"),
            ("config.colour", "extra_forbidden"),
        }
    assert (await client.get(widget, headers=acme.headers)).json()["config"] == old

    fixed = await client.put(widget + "/config", json={}, headers=acme.matching(etag))
    assert fixed.status_code == 200, fixed.text
    published = await client.post(widget + "/publish", headers=acme.matching(fixed.headers["ETag"]))
    assert (published.status_code, published.json()["published_version"]) == (200, 3)


async def test_a_stored_config_that_still_validates_is_read_with_todays_defaults(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    """A draft saved before an option existed is answered with the option's default, as
    every draft saved since holds it: the dashboard reads every option a config has."""
    created = await create(client, acme)
    stored = await db.get_one(Widget, uuid.UUID(created.json()["id"]))
    assert stored.draft["require_identity"] is False
    stored.draft = {k: v for k, v in stored.draft.items() if k != "require_identity"}
    await db.flush()

    got = await client.get(url(created), headers=acme.headers)

    assert got.status_code == 200, got.text
    assert got.json()["config"] == created.json()["config"]
