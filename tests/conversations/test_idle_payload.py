"""``conversation.idle`` carries a bounded transcript: its latest items, at most ``ITEMS``
and ``BYTES`` of JSON as sent, marked ``truncated`` with the items' total and where the REST
API reads them all; a short conversation whole, not truncated."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.conversations import idle
from kithost.models import Role, WebhookDelivery
from kithost.models.base import utcnow
from kithost.widgets.service import create_widget
from tests.conversations.helpers import conversation
from tests.factories import login, make_member, make_tenant
from tests.webhooks.helpers import hook_at, sent

__all__ = ["sent"]  # the fixture: deliveries queued, not sent


async def announced(app: FastAPI, db: AsyncSession) -> dict[str, dict[str, Any]]:
    """Run the idle announcements now; each thread's ``data``, as a delivery sends it."""
    await idle.announce_idle(app.state.sessionmaker, app.state.settings.keys(), utcnow())
    deliveries = await db.scalars(
        select(WebhookDelivery).where(WebhookDelivery.event_type == "conversation.idle")
    )
    return {
        d.thread_id: json.loads(json.dumps(d.payload, separators=(",", ":")))["data"]
        for d in deliveries
        if d.thread_id is not None
    }


def size(data: dict[str, Any]) -> int:
    return len(json.dumps(data, separators=(",", ":")))


async def test_an_idle_conversation_is_announced_with_its_latest_items_within_bounds(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    sent: list[tuple[str, list[Any]]],
) -> None:
    tenant = await make_tenant(db, "acme")
    widget = await create_widget(db, CLI, tenant, name="Shop")
    hook = await hook_at(app, db, tenant, "https://hooks.example/in", slow=False)
    hook.events = ["conversation.idle"]
    hook.created_at = utcnow() - timedelta(days=1)
    many = [f"message {n}" for n in range(idle.ITEMS + 150)]
    long = [f"{n} " + "x" * (idle.BYTES // 20) for n in range(30)]
    threads = {
        "short": await conversation(db, widget, "u:1", ["Hello?", "Hi."], hours_ago=1),
        "many": await conversation(db, widget, "u:2", many, hours_ago=1),
        "long": await conversation(db, widget, "u:3", long, hours_ago=1),
    }
    await db.flush()

    data = await announced(app, db)

    short = data[threads["short"]]
    assert [i["text"] for i in short["items"]] == ["Hello?", "Hi."], "whole"
    assert (short["truncated"], short["items_total"]) == (False, 2)

    for name, texts in [("many", many), ("long", long)]:
        got = data[threads[name]]
        assert size(got) <= idle.BYTES, name
        assert got["truncated"] is True, name
        assert got["items_total"] == len(texts), name
        shown = [i["text"] for i in got["items"]]
        assert 0 < len(shown) <= idle.ITEMS, name
        assert shown == texts[-len(shown) :], f"{name}: the latest items, in order"
    assert len(data[threads["many"]]["items"]) == idle.ITEMS
    assert 2 < len(data[threads["long"]]["items"]) < idle.ITEMS, "as many as fit in BYTES"

    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    got = data[threads["many"]]
    assert got["transcript_path"] == f"/api/v1/tenants/acme/conversations/{threads['many']}"
    left_out = got["items_total"] - len(got["items"])
    read = await client.get(
        got["transcript_path"], params={"limit": left_out}, headers=owner.headers
    )
    assert read.status_code == 200, read.text
    assert [i["text"] for i in read.json()["items"]] == many[:left_out], "the rest"
    after = await client.get(
        got["transcript_path"], params={"after": read.json()["next"]}, headers=owner.headers
    )
    assert [i["id"] for i in after.json()["items"]] == [i["id"] for i in got["items"]]
