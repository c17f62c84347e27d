"""Conversations as the chat runtime stores them, made directly (no model involved); tenant
``acme`` with chats (and another tenant's), its conversation list as the API answers it,
and a ready export's download link."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.chat.runtime import runtime
from kithost.conversations import exports
from kithost.models import ChatItem, ChatThread, Role, Tenant, Widget
from kithost.models.base import utcnow
from kithost.widgets.service import create_widget
from tests.conftest import state_of
from tests.factories import Credentials, login, make_member, make_tenant

ANONYMOUS = "a:anon_" + "z" * 24


async def conversation(
    db: AsyncSession,
    widget: Widget,
    end_user: str,
    texts: list[str],
    *,
    hours_ago: int = 0,
    feedback: str | None = None,
    preview: bool = False,
) -> str:
    """A thread of ``end_user`` alternating user and assistant messages of ``texts``
    (``preview``: started in the dashboard's preview of the widget's draft)."""
    thread_id = "thr_" + secrets.token_hex(8)
    at = utcnow() - timedelta(hours=hours_ago)
    db.add(
        ChatThread(
            id=thread_id,
            tenant_id=widget.tenant_id,
            widget_id=widget.id,
            end_user_id=end_user,
            created_at=at,
            updated_at=at,
            payload={"id": thread_id, "title": texts[0][:20], "created_at": at.isoformat()},
            payload_version=1,
            preview=preview,
        )
    )
    await db.flush()
    for index, text in enumerate(texts):
        kind = "user_message" if index % 2 == 0 else "assistant_message"
        part = "input_text" if kind == "user_message" else "output_text"
        db.add(
            ChatItem(
                id="msg_" + secrets.token_hex(8),
                thread_id=thread_id,
                tenant_id=widget.tenant_id,
                widget_id=widget.id,
                end_user_id=end_user,
                created_at=at + timedelta(seconds=index),
                kind=kind,
                feedback=feedback if kind == "assistant_message" else None,
                payload={"type": kind, "content": [{"type": part, "text": text}]},
                payload_version=1,
            )
        )
    await db.flush()
    return thread_id


CONVERSATIONS = "/api/v1/tenants/acme/conversations"


async def acme_with_chats(
    app: FastAPI, db: AsyncSession
) -> tuple[Tenant, Credentials, dict[str, str]]:
    """Tenant ``acme`` (two widgets, three threads by name), its owner signed in, and a
    thread of tenant ``other`` (``theirs``) that acme must never be shown."""
    tenant = await make_tenant(db, "acme")
    shop = await create_widget(db, CLI, tenant, name="Shop")
    blog = await create_widget(db, CLI, tenant, name="Blog")
    threads = {
        "returns": await conversation(
            db,
            shop,
            "u:42",
            ["Can I return my tent?", "Yes, within 30 days."],
            hours_ago=1,
            feedback="positive",
        ),
        "anonymous": await conversation(
            db,
            shop,
            ANONYMOUS,
            ["Do you ship to Norway?", "We do.", "How long?", "A week."],
            hours_ago=2,
            feedback="negative",
        ),
        "blog": await conversation(db, blog, "u:7", ["Who writes the blog?"], hours_ago=3),
    }
    other = await make_tenant(db, "other")
    theirs = await create_widget(db, CLI, other, name="Theirs")
    threads["theirs"] = await conversation(db, theirs, "u:42", ["Can I return my kayak?"])
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    return tenant, owner, threads


async def listed(client: httpx2.AsyncClient, owner: Credentials, **params: Any) -> list[str]:
    response = await client.get(CONVERSATIONS, params=params, headers=owner.headers)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["data"]]


async def link_for(
    app: FastAPI, client: httpx2.AsyncClient, tenant: Tenant, caller: Credentials
) -> str:
    """A ready export's download link, as ``caller`` asks for it (the worker's part run
    here, into the app's storage)."""
    requested = await client.post(
        f"{CONVERSATIONS}/exports", json={"format": "jsonl"}, headers=caller.headers
    )
    assert requested.status_code == 202, requested.text
    export_id = uuid.UUID(requested.json()["id"])
    storage, keys = runtime(state_of(app)).storage, app.state.settings.keys()
    assert await exports.write(app.state.sessionmaker, storage, keys, tenant.id, export_id)
    shown = await client.get(f"{CONVERSATIONS}/exports/{export_id}", headers=caller.headers)
    link: str = shown.json()["download_url"]
    assert link is not None, shown.text
    return link
