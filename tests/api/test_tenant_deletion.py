"""Deleting a tenant (``DELETE /api/v1/tenants/{tenant}?confirm={slug}``): every row it
holds goes with it, its blobs and OpenAI's copies of its knowledge after the commit (the
tasks it sends, run here as a worker would), nothing of another tenant's; its members keep
their accounts. Only its owners and platform admins may, with its slug; the platform's
audit log keeps the deletion. On both databases."""

from __future__ import annotations

import asyncio
import uuid

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kithost.auth.principals import TenantAccess, UserPrincipal
from kithost.auth.roles import ALL_SCOPES
from kithost.auth.scopes import Scope
from kithost.chat.tasks import delete_blobs
from kithost.errors import NotFound
from kithost.models import AuditLogEntry, ChatAttachment, Membership, Role, Tenant, User
from kithost.models.base import Base
from kithost.storage import blob_key, storage_for
from kithost.tenants import service
from tests.analytics.helpers import published_widget
from tests.conftest import concurrent_sessions
from tests.factories import client_token, login, make_member, make_tenant, make_user
from tests.fakes.openai_server import FakeOpenAI
from tests.knowledge.helpers import (
    GUIDE,
    app,
    editor_of_acme,
    new_base,
    run_ingest,
    run_remove,
    tasks,
    upload,
)
from tests.visitor.helpers import ORIGIN, config_url
from tests.workers import RecordedTasks

__all__ = ["app", "tasks"]  # the fixtures: the app keeps the tasks it sends

TENANTS = "/api/v1/tenants"
TENANT_TABLES = [table for table in Base.metadata.sorted_tables if "tenant_id" in table.c]


async def rows_of(db: AsyncSession, tenant: Tenant) -> dict[str, int]:
    """How many rows of each table hold ``tenant``'s id (the tables with none left out)."""
    counts = {}
    for table in TENANT_TABLES:
        query = select(func.count()).select_from(table).where(table.c.tenant_id == tenant.id)
        if found := await db.scalar(query):
            counts[table.name] = found
    return counts


async def exists(db: AsyncSession, model: type[Tenant] | type[User], id: object) -> bool:
    """Whether the row is in the database (not the test session's memory)."""
    return bool(await db.scalar(select(func.count()).select_from(model).where(model.id == id)))


async def test_an_owner_deletes_the_tenant_with_everything_it_holds(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    owner_user = await make_member(db, tenant, Role.owner)
    owner = await login(app, db, owner_user)
    document = await upload(client, editor, await new_base(client, editor), GUIDE)
    assert document.status_code == 202, document.text
    assert await run_ingest(app, tasks) == ["ready"]
    assert fake_openai.vector_stores.stores
    widget = await published_widget(db, tenant)
    attachment = ChatAttachment(
        id="atc_1",
        tenant_id=tenant.id,
        widget_id=widget.id,
        end_user_id="a:anon",
        mime_type="text/plain",
        size=2,
        payload={},
        payload_version=1,
    )
    db.add(attachment)
    await db.flush()
    attachment_key = blob_key(tenant.id, widget.id, attachment.id)
    await storage_for(app.state.settings).put(attachment_key, b"hi")
    backend = await client_token(app, db, tenant, list(Scope))
    other = await published_widget(db)
    theirs = await rows_of(db, await db.get_one(Tenant, other.tenant_id))
    assert set(await rows_of(db, tenant)) >= {
        "widgets",
        "knowledge_documents",
        "chat_attachments",
        "api_clients",
        "memberships",
        "audit_log_entries",
    }

    deleted = await client.delete(
        f"{TENANTS}/acme", params={"confirm": "acme"}, headers=owner.headers
    )

    assert deleted.status_code == 204, deleted.text
    assert await rows_of(db, tenant) == {}
    assert not await exists(db, Tenant, tenant.id)
    assert await rows_of(db, await db.get_one(Tenant, other.tenant_id)) == theirs
    assert await exists(db, User, owner_user.id)  # the account stays
    entry = await db.scalar(select(AuditLogEntry).where(AuditLogEntry.action == "tenant.deleted"))
    assert entry is not None
    assert (entry.tenant_id, entry.target_id, entry.data) == (
        None,
        str(tenant.id),
        {"slug": "acme", "name": "Acme"},
    )
    assert (entry.actor_type, entry.actor_id) == ("user", str(owner_user.id))

    # Visitors, members and API clients find nothing any more.
    config = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    assert (config.status_code, config.json()["code"]) == (404, "widget_not_found")
    gone = await client.get(f"{TENANTS}/acme", headers=owner.headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "tenant_not_found")
    assert (await client.get(f"{TENANTS}/acme/widgets", headers=backend.headers)).status_code == 401

    # After the commit: the attachment's bytes, the document's, and OpenAI's copies (with the
    # tenant's key, though the tenant is gone by then).
    assert tasks.take(delete_blobs.name) == [[str(tenant.id), [attachment_key]]]
    assert await run_remove(app, tasks) == 1
    assert fake_openai.vector_stores.stores == {}
    assert fake_openai.vector_stores.files == {}


async def test_only_its_owners_and_platform_admins_delete_a_tenant_naming_it(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    everyone_else = [
        (await login(app, db, await make_member(db, tenant, role))).headers
        for role in (Role.admin, Role.editor, Role.viewer)
    ]
    everyone_else.append((await client_token(app, db, tenant, list(Scope))).headers)
    for headers in everyone_else:
        refused = await client.delete(
            f"{TENANTS}/acme", params={"confirm": "acme"}, headers=headers
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "owner_required")
    other = await make_tenant(db)
    strangers = [
        (await login(app, db, await make_member(db, other, Role.owner))).headers,
        (await client_token(app, db, other, list(Scope))).headers,
    ]
    for headers in strangers:
        hidden = await client.delete(f"{TENANTS}/acme", params={"confirm": "acme"}, headers=headers)
        assert (hidden.status_code, hidden.json()["code"]) == (404, "tenant_not_found")
    nobody = await client.delete(f"{TENANTS}/acme", params={"confirm": "acme"})
    assert (nobody.status_code, nobody.json()["code"]) == (401, "unauthenticated")
    for params in ({}, {"confirm": "ACME"}, {"confirm": "other"}, {"confirm": "x" * 64}):
        unconfirmed = await client.delete(f"{TENANTS}/acme", params=params, headers=owner.headers)
        assert unconfirmed.status_code == 422, unconfirmed.text
        assert [e["field"] for e in unconfirmed.json()["errors"]] == ["confirm"]
    assert await exists(db, Tenant, tenant.id)

    operator = await login(app, db, await make_user(db, platform_admin=True))
    deleted = await client.delete(
        f"{TENANTS}/acme", params={"confirm": "acme"}, headers=operator.headers
    )
    assert deleted.status_code == 204, deleted.text
    assert not await exists(db, Tenant, tenant.id)


async def test_of_two_concurrent_deletions_the_second_finds_no_tenant(engine: AsyncEngine) -> None:
    """Two transactions at once, on their own connections: the second waits for the first's
    row lock, then finds the tenant gone: a 404, not an error."""
    sessionmaker = concurrent_sessions(engine)
    async with sessionmaker() as setup:
        tenant = Tenant(slug=f"race-{uuid.uuid4().hex[:8]}", name="Race")
        user = User(email=f"owner-{tenant.slug}@race.test")
        setup.add_all([tenant, user])
        await setup.flush()
        setup.add(Membership(tenant_id=tenant.id, user_id=user.id, role=Role.owner))
        await setup.commit()
    owner = UserPrincipal(user, uuid.uuid4())

    async def access(session: AsyncSession) -> TenantAccess:
        """The owner's access, as a request's unit of work loads it."""
        return TenantAccess(await session.get_one(Tenant, tenant.id), owner, ALL_SCOPES, Role.owner)

    try:
        async with sessionmaker() as first, sessionmaker() as second:
            await service.delete_tenant(first, await access(first), tenant.slug)
            raced = await access(second)
            waiting = asyncio.create_task(service.delete_tenant(second, raced, tenant.slug))
            await asyncio.sleep(0.3)
            assert not waiting.done(), "the second deletion waits for the first's row lock"
            await first.commit()
            with pytest.raises(NotFound) as refused:
                await waiting
            assert refused.value.code == "tenant_not_found"
    finally:
        async with sessionmaker() as cleanup:
            await cleanup.execute(delete(Tenant).where(Tenant.id == tenant.id))
            await cleanup.execute(delete(User).where(User.id == user.id))
            await cleanup.execute(
                delete(AuditLogEntry).where(AuditLogEntry.target_id == str(tenant.id))
            )
            await cleanup.commit()
