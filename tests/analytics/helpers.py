"""Events to send, widgets to send them for, and the reports to read back."""

from __future__ import annotations

import secrets
import string
import time
from typing import Any, NamedTuple

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.ingestion import service as ingestion
from kithost.analytics.rollups import service as rollups
from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.db import session_scope
from kithost.models import Tenant, Widget
from kithost.models.base import utcnow
from kithost.widgets.service import create_widget, publish_draft
from tests.factories import Credentials, client_token, make_tenant

SHOP = "https://shop.example.com"
USER = "a:anon_" + "u" * 24


async def published_widget(db: AsyncSession, tenant: Tenant | None = None) -> Widget:
    """A published widget allowing ``SHOP`` (of a new tenant unless given)."""
    tenant = tenant or await make_tenant(db)
    widget = await create_widget(db, CLI, tenant, name="Support", origins=[SHOP])
    await publish_draft(db, CLI, widget, published_by=None)
    await db.flush()
    return widget


def now_ms() -> int:
    return int(time.time() * 1000)


def event(name: str, data: Any = None, **fields: Any) -> dict[str, Any]:
    """A client event as a loader sends it (a fresh id and the current time)."""
    return {
        "id": f"ev_{secrets.token_hex(8)}",
        "name": name,
        "time": now_ms(),
        "data": data or {},
    } | fields


def server(name: str, end_user: str | None = USER, **data: Any) -> dict[str, Any]:
    """A server fact as the chat runtime or session minting sends it to the task."""
    return {
        "id": f"s_{secrets.token_hex(16)}",
        "name": name,
        "time": now_ms(),
        "end_user": end_user,
        "data": data,
    }


def conversation(thread: str, messages: int, *, positive: bool = False) -> list[dict[str, Any]]:
    """Server facts of one thread: created, ``messages`` user messages each answered."""
    facts = [server("server.thread.created", thread_id=thread)]
    for _ in range(messages):
        facts.append(server("server.message.received", thread_id=thread))
        facts.append(
            server(
                "server.response.finished",
                thread_id=thread,
                first_token_ms=300,
                total_ms=1200,
                input_tokens=100,
                output_tokens=40,
            )
        )
    if positive:
        facts.append(server("server.feedback", thread_id=thread, kind="positive", items=1))
    return facts


def client_error(
    message: str, frame: str = "at send (https://shop.example.com/app.js:10:5)"
) -> dict[str, Any]:
    return event(
        "client.error",
        {"kind": "network", "message": message, "hint": "Check the network", "frame": frame},
    )


def made_up_error() -> dict[str, Any]:
    """A client error unlike any other (letters only: nothing in it is normalised away), as
    a page reporting random messages sends them."""
    word = "".join(secrets.choice(string.ascii_lowercase) for _ in range(16))
    return client_error(f"Made up {word}")


NEW_GROUP_HOOK = {"url": "https://hooks.example.com/errors", "events": ["client_error.new_group"]}
"""A webhook endpoint announcing new error groups (``POST …/webhooks``; never delivered)."""


def stamped(events: list[dict[str, Any]], end_user: str | None = USER) -> list[dict[str, Any]]:
    """Client events as the API hands them to the task (the batch's end user copied in)."""
    return [{**e, "end_user": e.get("end_user", end_user)} for e in events]


async def store(
    app: FastAPI, widget: Widget, events: list[dict[str, Any]], end_user: str | None = USER
) -> int:
    """Store as the ingest task does, then run the rollup as beat does."""
    async with session_scope(app.state.sessionmaker, tenant=widget.tenant_id) as session:
        stored = await ingestion.store(
            session, widget.tenant_id, widget.id, stamped(events, end_user), utcnow()
        )
    await rollups.rollup_pending(app.state.sessionmaker)
    return stored


class Subject(NamedTuple):
    widget: Widget
    tenant: Tenant
    creds: Credentials
    """An API client of the tenant with analytics:read, widgets:write, members:write and
    conversations:write."""
    url: str
    """The tenant's analytics routes."""


async def subject(app: FastAPI, db: AsyncSession, widget: Widget | None = None) -> Subject:
    """A published widget (a new one unless given), its tenant and a client of it."""
    widget = widget or await published_widget(db)
    tenant = await db.get(Tenant, widget.tenant_id)
    assert tenant is not None
    scopes = [
        Scope.analytics_read,
        Scope.widgets_write,
        Scope.members_write,
        Scope.conversations_write,
    ]
    creds = await client_token(app, db, tenant, scopes)
    return Subject(widget, tenant, creds, f"/api/v1/tenants/{tenant.slug}/analytics")
