"""An export never outlives a conversation it holds: once one is deleted (by staff, the end
user, the visitor, retention or the widget's deletion), its download is 410
``export_invalidated``, the export shows ``invalidated`` and its file's deletion is sent
with the deletion's commit; a file written while one of its conversations is deleted is
never published. The worker's part runs here (tests/conversations/test_exports.py runs a
real one)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import delete as sa_delete
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.retention import service as retention
from kithost.chat import repository as chat
from kithost.chat.runtime import runtime
from kithost.conversations import exports, repository, service
from kithost.conversations.schemas import ConversationFilters, ExportFormat
from kithost.db import Sessionmaker, session_scope
from kithost.kit.keys import Keys
from kithost.models import ChatThread, ConversationExport, Tenant
from kithost.models.base import utcnow
from tests.conftest import state_of
from tests.conversations.test_conversations_api import CONVERSATIONS, acme_with_chats
from tests.factories import Credentials
from tests.workers import RecordedTasks

DELETE_BLOBS = "kithost.chat.delete_blobs"


async def requested(client: httpx2.AsyncClient, owner: Credentials) -> uuid.UUID:
    answer = await client.post(
        f"{CONVERSATIONS}/exports", json={"format": "jsonl"}, headers=owner.headers
    )
    assert answer.status_code == 202, answer.text
    return uuid.UUID(answer.json()["id"])


async def written(app: FastAPI, tenant: Tenant, export_id: uuid.UUID) -> bool:
    """The task's work, run here into the app's storage."""
    storage, keys = runtime(state_of(app)).storage, app.state.settings.keys()
    return await exports.write(app.state.sessionmaker, storage, keys, tenant.id, export_id)


async def stored(app: FastAPI, export: ConversationExport) -> bool:
    return await runtime(state_of(app)).storage.get(exports.blob_key(export)) is not None


async def delete(
    how: str,
    app: FastAPI,
    client: httpx2.AsyncClient,
    db: AsyncSession,
    owner: Credentials,
    tenant: Tenant,
    thread_id: str,
) -> None:
    """Delete the conversation as ``how`` says, each through its own path."""
    if how == "staff":
        gone = await client.delete(f"{CONVERSATIONS}/{thread_id}", headers=owner.headers)
        assert gone.status_code == 204, gone.text
    elif how == "end user":
        erased = await client.post(
            "/api/v1/tenants/acme/analytics/end-user-deletions",
            json={"end_user": "u:42"},
            headers=owner.headers,
        )
        assert erased.status_code == 200, erased.text
    elif how == "widget":
        thread = await db.get(ChatThread, thread_id)
        assert thread is not None
        widgets = f"/api/v1/tenants/{tenant.slug}/widgets"
        gone = await client.delete(f"{widgets}/{thread.widget_id}", headers=owner.headers)
        assert gone.status_code == 204, gone.text
    elif how == "visitor":  # ChatKit's threads.delete: the store's deletion, a unit of its own
        async with session_scope(app.state.sessionmaker, tenant=tenant.id) as session:
            await chat.delete_threads(
                session, (ChatThread.tenant_id == tenant.id) & (ChatThread.id == thread_id)
            )
    else:  # retention: everything idle since before now
        async with session_scope(app.state.sessionmaker, tenant=tenant.id) as session:
            await retention.purge_expired(session, tenant.id, 0)


@pytest.mark.parametrize("how", ["staff", "end user", "visitor", "retention", "widget"])
async def test_a_deleted_conversation_takes_the_exports_holding_it(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    tenant, owner, threads = await acme_with_chats(app, db)
    tasks = RecordedTasks()
    monkeypatch.setattr(app.state.celery, "send_task", tasks.record)
    export_id = await requested(client, owner)
    assert await written(app, tenant, export_id)
    url = f"{CONVERSATIONS}/exports/{export_id}"
    link = (await client.get(url, headers=owner.headers)).json()["download_url"]
    downloaded = await client.get(link)
    assert downloaded.status_code == 200
    assert threads["returns"] in downloaded.text

    await delete(how, app, client, db, owner, tenant, threads["returns"])
    # The file goes with the deletion's commit, before anything reads the export.
    export = await db.get(ConversationExport, export_id, populate_existing=True)
    assert export is not None
    assert export.status == "invalidated"
    blobs = [key for args in tasks.take(DELETE_BLOBS) for key in args[1]]
    assert exports.blob_key(export) in blobs
    refused = await client.get(link)
    assert (refused.status_code, refused.json()["code"]) == (410, "export_invalidated")
    shown = (await client.get(url, headers=owner.headers)).json()
    assert (shown["status"], shown["download_url"]) == ("invalidated", None)
    assert (await client.get(link)).status_code == 410, "and it stays so"
    assert tasks.take(DELETE_BLOBS) == [], "its file was sent for deletion once"
    await runtime(state_of(app)).storage.delete([exports.blob_key(export)])


async def test_the_hourly_purge_invalidates_an_export_holding_a_conversation_deleted_before(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, owner, threads = await acme_with_chats(app, db)
    tasks = RecordedTasks()
    monkeypatch.setattr(app.state.celery, "send_task", tasks.record)
    lost = await requested(client, owner)
    assert await written(app, tenant, lost)
    # Deleted without invalidating it, as before deletions invalidated exports.
    await db.execute(sa_delete(ChatThread).where(ChatThread.id == threads["blog"]))
    await db.commit()
    kept = await requested(client, owner)  # written without it
    assert await written(app, tenant, kept)

    await exports.purge_expired(app.state.sessionmaker, utcnow())
    kept_row = await db.get(ConversationExport, kept, populate_existing=True)
    lost_row = await db.get(ConversationExport, lost, populate_existing=True)
    assert kept_row is not None
    assert lost_row is not None
    assert (kept_row.status, lost_row.status) == ("ready", "invalidated")
    blobs = [key for args in tasks.take(DELETE_BLOBS) for key in args[1]]
    assert blobs == [exports.blob_key(lost_row)]
    kept_link = (await client.get(f"{CONVERSATIONS}/exports/{kept}", headers=owner.headers)).json()
    assert (await client.get(kept_link["download_url"])).status_code == 200
    await runtime(state_of(app)).storage.delete(
        [exports.blob_key(kept_row), exports.blob_key(lost_row)]
    )


@pytest.mark.parametrize("how", ["staff", "visitor"])
async def test_a_file_written_while_a_conversation_it_holds_is_deleted_is_not_published(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """The conversation goes once the export has written it, before the file is stored."""
    tenant, owner, threads = await acme_with_chats(app, db)
    monkeypatch.setattr(app.state.celery, "send_task", RecordedTasks().record)
    lines = exports.EXPORTERS[ExportFormat.jsonl]

    async def deleting_meanwhile(
        sessionmaker: Sessionmaker, tenant_id: uuid.UUID, filters: ConversationFilters, keys: Keys
    ) -> AsyncIterator[service.ExportPart]:
        async for part in lines(sessionmaker, tenant_id, filters, keys):
            yield part
            if part.thread_id == threads["returns"] and part.text.endswith("\n"):
                await delete(how, app, client, db, owner, tenant, threads["returns"])

    monkeypatch.setitem(exports.EXPORTERS, ExportFormat.jsonl, deleting_meanwhile)
    export_id = await requested(client, owner)
    assert not await written(app, tenant, export_id)
    shown = await client.get(f"{CONVERSATIONS}/exports/{export_id}", headers=owner.headers)
    assert (shown.json()["status"], shown.json()["download_url"]) == ("invalidated", None)
    export = await db.get(ConversationExport, export_id)
    assert export is not None
    assert not await stored(app, export), "the file is not kept"


@pytest.mark.filterwarnings("error")
async def test_the_hourly_purge_leaves_an_export_deleted_meanwhile_to_its_deletion(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another purge (or the tenant's deletion) deletes one of the exports this one found
    old enough, before this one deletes it: this one deletes the others and is done."""
    tenant, owner, _ = await acme_with_chats(app, db)
    tasks = RecordedTasks()
    monkeypatch.setattr(app.state.celery, "send_task", tasks.record)
    first, second = await requested(client, owner), await requested(client, owner)
    found = repository.exports_before

    async def one_deleted_meanwhile(
        session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime | None
    ) -> Sequence[ConversationExport]:
        old = await found(session, tenant_id, cutoff)
        async with session_scope(app.state.sessionmaker, tenant=tenant_id) as other:
            await other.execute(sa_delete(ConversationExport).where(ConversationExport.id == first))
        return old

    monkeypatch.setattr(repository, "exports_before", one_deleted_meanwhile)
    assert await exports.purge_expired(app.state.sessionmaker, utcnow() + exports.KEPT) == 1
    assert await db.get(ConversationExport, second, populate_existing=True) is None
    [[_, blobs]] = tasks.take(DELETE_BLOBS)
    assert blobs == [f"{tenant.id}/exports/{second}.jsonl"]
