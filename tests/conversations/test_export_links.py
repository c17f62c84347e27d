"""An export's download link needs no credentials, but it is made for one caller and
audited as them: it works only while they may still read conversations.

(The worker's side runs here; tests/conversations/test_exports.py runs a real one.)"""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.scopes import Scope
from kithost.chat.runtime import runtime
from kithost.conversations import exports
from kithost.models import AuditLogEntry, ConversationExport, Role, Tenant
from tests.conftest import state_of
from tests.conversations.helpers import CONVERSATIONS, acme_with_chats, link_for
from tests.factories import Credentials, client_token, login, make_member
from tests.workers import RecordedTasks

TENANT = "/api/v1/tenants/acme"


async def reader_until(
    app: FastAPI,
    client: httpx2.AsyncClient,
    db: AsyncSession,
    tenant: Tenant,
    owner: Credentials,
    ending: str,
) -> tuple[Credentials, str, dict[str, Any]]:
    """Who may read acme's conversations until the owner ends it (``ending``), through the
    API: their credentials, and the request (method, URL, body) that ends it."""
    if ending == "a client revoked":
        reader = await client_token(app, db, tenant, [Scope.conversations_read])
        clients = (await client.get(f"{TENANT}/clients", headers=owner.headers)).json()
        return reader, "DELETE", {"url": f"{TENANT}/clients/{clients[0]['id']}"}
    if ending == "editors closed out":
        settings = f"{CONVERSATIONS}/settings"
        opened = await client.put(settings, json={"editors_may_read": True}, headers=owner.headers)
        assert opened.status_code == 200, opened.text
        editor = await login(app, db, await make_member(db, tenant, Role.editor))
        return editor, "PUT", {"url": settings, "json": {"editors_may_read": False}}
    admin = await make_member(db, tenant, Role.admin)
    member = f"{TENANT}/members/{admin.id}"
    if ending == "removed":
        return await login(app, db, admin), "DELETE", {"url": member}
    return await login(app, db, admin), "PATCH", {"url": member, "json": {"role": "viewer"}}


@pytest.mark.parametrize(
    "ending", ["removed", "made a viewer", "editors closed out", "a client revoked"]
)
async def test_a_download_link_ends_with_its_callers_access(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    ending: str,
) -> None:
    tenant, owner, _threads = await acme_with_chats(app, db)
    monkeypatch.setattr(app.state.celery, "send_task", RecordedTasks().record)
    reader, method, end = await reader_until(app, client, db, tenant, owner, ending)
    link = await link_for(app, client, tenant, reader)
    owners_link = await link_for(app, client, tenant, owner)
    assert (await client.get(link)).status_code == 200

    ended = await client.request(method, headers=owner.headers, **end)
    assert ended.status_code in (200, 204), ended.text
    refused = await client.get(link)
    assert refused.status_code == 404, refused.text
    assert refused.json()["code"] == "download_not_found"
    assert (await client.get(owners_link)).status_code == 200  # the owner still reads

    # The log records the downloads that happened, each as the caller it was made for.
    entries = await db.scalars(
        select(AuditLogEntry).where(
            AuditLogEntry.tenant_id == tenant.id,
            AuditLogEntry.action == "conversations.export_downloaded",
        )
    )
    by_export: dict[str | None, int] = {}
    for entry in entries:
        export = await db.get(ConversationExport, uuid.UUID(str(entry.target_id)))
        assert export is not None
        assert entry.actor_id == export.requested_by
        by_export[export.requested_by] = by_export.get(export.requested_by, 0) + 1
    assert sorted(by_export.values()) == [1, 1], "one download each: the refused one is not"
    written = (await db.scalars(select(ConversationExport))).all()
    await runtime(state_of(app)).storage.delete([exports.blob_key(e) for e in written])
