"""Retention and erasure of chat data (``chat.service``), and the bytes they remove."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.analytics.retention import service as retention
from kithost.chat import service, tasks
from kithost.chat.attachments import UNSENT_LIFETIME
from kithost.db import session_scope
from kithost.models import ChatAttachment, ChatItem, ChatThread, Role, Tenant
from kithost.models.base import utcnow
from tests.chat.helpers import (
    BOB,
    SentTasks,
    attachment_widget,
    blob,
    create,
    thread_of,
    upload,
    visitor,
)
from tests.factories import login, make_member
from tests.fakes.openai_server import FakeOpenAI


async def count(db: AsyncSession) -> dict[str, int]:
    return {
        model.__tablename__: await db.scalar(select(func.count()).select_from(model)) or 0
        for model in (ChatThread, ChatItem, ChatAttachment)
    }


async def test_erasure_and_retention(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    widget = await attachment_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    bob = await visitor(http, app, db, widget, end_user=BOB)
    sent = await create(alice)
    assert (await upload(http, sent)).status_code == 200
    await alice.send("With a picture", attachments=[sent["id"]])
    loose = await create(alice)
    assert (await upload(http, loose)).status_code == 200
    bobs = thread_of(await bob.send("Bob's question"))
    assert await count(db) == {"chat_threads": 2, "chat_items": 4, "chat_attachments": 2}

    async with session_scope(app.state.sessionmaker) as session:
        await rls.set_tenant(session, widget.tenant_id)  # as the deletion route does
        deleted = await service.delete_end_user_data(session, widget.tenant_id, alice.end_user)
        other_tenant = await service.delete_end_user_data(session, widget.id, BOB)

    assert (deleted, other_tenant) == (5, 0)  # thread, 2 items, 2 attachments
    assert await count(db) == {"chat_threads": 1, "chat_items": 2, "chat_attachments": 0}
    assert await db.get(ChatThread, bobs) is not None
    [(_name, (tenant_id, keys))] = [
        (n, args) for n, args in sent_tasks.tasks if n == tasks.delete_blobs.name
    ]
    assert tenant_id == str(widget.tenant_id)
    assert blob(app, widget, sent["id"]).exists()  # until the worker runs
    monkeypatch.setattr(tasks, "get_settings", lambda: app.state.settings)
    await asyncio.to_thread(tasks.delete_blobs.run, tenant_id, keys)  # as a worker does
    assert not blob(app, widget, sent["id"]).exists()
    assert not blob(app, widget, loose["id"]).exists()

    async with session_scope(app.state.sessionmaker) as session:
        await rls.set_tenant(session, widget.tenant_id)  # as the retention task does
        kept = await service.purge_before(session, widget.tenant_id, utcnow() - timedelta(days=1))
        purged = await service.purge_before(
            session, widget.tenant_id, utcnow() + timedelta(seconds=1)
        )
    assert (kept, purged) == (0, 3)
    assert await count(db) == {"chat_threads": 0, "chat_items": 0, "chat_attachments": 0}


async def test_deleting_a_widget_deletes_what_visitors_said_and_sent_to_it(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database deletes a widget's threads, items and attachments with it; their bytes
    go too, after the commit (the rows alone went, and visitors' files stayed)."""
    widget = await attachment_widget(db, app, fake_openai)
    other = await attachment_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    sent = await create(alice)
    assert (await upload(http, sent)).status_code == 200
    await alice.send("With a picture", attachments=[sent["id"]])
    loose = await create(alice)
    assert (await upload(http, loose)).status_code == 200
    elsewhere = await visitor(http, app, db, other)
    kept = await create(elsewhere)
    assert (await upload(http, kept)).status_code == 200
    tenant = await db.get(Tenant, widget.tenant_id)
    assert tenant is not None
    owner = await login(app, db, await make_member(db, tenant, Role.owner))

    url = f"/api/v1/tenants/{tenant.slug}/widgets/{widget.id}"
    deleted = await http.delete(url, headers=owner.headers)

    assert deleted.status_code == 204, deleted.text
    assert await count(db) == {"chat_threads": 0, "chat_items": 0, "chat_attachments": 1}
    [(tenant_id, keys)] = [args for n, args in sent_tasks.tasks if n == tasks.delete_blobs.name]
    monkeypatch.setattr(tasks, "get_settings", lambda: app.state.settings)
    await asyncio.to_thread(tasks.delete_blobs.run, tenant_id, keys)  # as a worker does
    assert not blob(app, widget, sent["id"]).exists()
    assert not blob(app, widget, loose["id"]).exists()
    assert blob(app, other, kept["id"]).exists(), "another widget's"


async def test_unsent_attachments_expire_after_a_day(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
) -> None:
    """The hourly purge deletes an attachment no message carries once it is a day old, with
    the tenant's retention far longer; sent ones stay with their conversation."""
    widget = await attachment_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    sent, stale, fresh = [await create(alice) for _ in range(3)]
    for attachment in (sent, stale, fresh):
        assert (await upload(http, attachment)).status_code == 200
    await alice.send("With a picture", attachments=[sent["id"]])
    day_ago = utcnow() - UNSENT_LIFETIME - timedelta(minutes=1)
    await db.execute(
        update(ChatAttachment)
        .where(ChatAttachment.id.in_([sent["id"], stale["id"]]))
        .values(created_at=day_ago)
    )
    await db.flush()

    async with session_scope(app.state.sessionmaker, tenant=widget.tenant_id) as session:
        removed = await retention.purge_expired(session, widget.tenant_id, days=90)

    assert removed["chat"] == 1
    remaining = await db.scalars(select(ChatAttachment.id).order_by(ChatAttachment.id))
    assert sorted(remaining) == sorted([sent["id"], fresh["id"]])
    [(_name, (_tenant, keys))] = [
        (n, args) for n, args in sent_tasks.tasks if n == tasks.delete_blobs.name
    ]
    assert keys == [f"{widget.tenant_id}/{widget.id}/{stale['id']}"]
