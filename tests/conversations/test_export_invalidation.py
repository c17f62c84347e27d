"""An export never outlives a conversation it holds: once one is deleted (by staff, the end
user, the visitor, retention or the widget's deletion), its download is 410
``export_invalidated``, the export shows ``invalidated`` and its file's deletion is sent
with the deletion's commit; a file written while one of its conversations is deleted is
never published. The worker's part runs here (tests/conversations/test_exports.py runs a
real one)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import delete as sa_delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kithost.analytics.retention import service as retention
from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.chat import repository as chat
from kithost.chat.runtime import runtime
from kithost.conversations import exports, repository, service
from kithost.conversations.schemas import ConversationFilters, ExportFormat
from kithost.db import Sessionmaker, session_scope
from kithost.kit.keys import Keys
from kithost.models import ChatThread, ConversationExport, Tenant
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.widgets.service import create_widget
from tests.conftest import state_of
from tests.conversations.helpers import CONVERSATIONS, acme_with_chats, conversation
from tests.factories import Credentials, client_token
from tests.races import RacingApp, ended_or_waiting, racing_app
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


@dataclass
class Raced:
    """An export asked for (not yet written) of a tenant's one conversation, in an app whose
    units of work commit."""

    racing: RacingApp
    tenant: Tenant
    reader: Credentials
    thread_id: str
    export_id: uuid.UUID

    def write(self) -> asyncio.Task[bool]:
        """The export's task, started."""
        app = self.racing.app
        storage, keys = runtime(state_of(app)).storage, app.state.settings.keys()
        writing = exports.write(
            app.state.sessionmaker, storage, keys, self.tenant.id, self.export_id
        )
        return asyncio.create_task(writing)

    async def delete(self, session: AsyncSession) -> None:
        """The visitor's deletion of the conversation, in ``session`` (not committed)."""
        deleted = (ChatThread.tenant_id == self.tenant.id) & (ChatThread.id == self.thread_id)
        await chat.delete_threads(session, deleted)

    async def shown(self) -> tuple[str, str | None]:
        """The export's status and download link, through the API; its file then deleted."""
        url = f"/api/v1/tenants/{self.tenant.slug}/conversations/exports/{self.export_id}"
        shown = (await self.racing.client.get(url, headers=self.reader.headers)).json()
        storage = runtime(state_of(self.racing.app)).storage
        await storage.delete([f"{self.tenant.id}/exports/{self.export_id}.jsonl"])
        return shown["status"], shown["download_url"]


@pytest.fixture
async def raced(
    settings: Settings, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Raced]:
    if engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    async with racing_app(settings, monkeypatch) as racing:
        async with racing.arranging() as session:
            tenant = await racing.tenant(session)
            widget = await create_widget(session, CLI, tenant, name="Support")
            thread_id = await conversation(session, widget, "u:1", ["Where is it?", "Shipped."])
            reader = await client_token(racing.app, session, tenant, [Scope.conversations_read])
        url = f"/api/v1/tenants/{tenant.slug}/conversations/exports"
        asked = await racing.client.post(url, json={"format": "jsonl"}, headers=reader.headers)
        assert asked.status_code == 202, asked.text
        yield Raced(racing, tenant, reader, thread_id, uuid.UUID(asked.json()["id"]))


async def test_an_export_recording_a_conversation_being_deleted_waits_for_the_deletion(
    raced: Raced,
) -> None:
    """The visitor's deletion has deleted the conversation and invalidated the exports it
    saw holding it, not yet committed, when the export's task (which read the conversation
    before) records that its file holds it: the task waits for the deletion's commit, then
    finds the conversation gone and does not publish the file. Had it not waited, the
    deletion would never see what it recorded, and the task would find the conversation
    still there: a file holding a deleted conversation, ready to download."""
    sessions = raced.racing.app.state.sessionmaker
    async with session_scope(sessions, tenant=raced.tenant.id) as deletion:
        await raced.delete(deletion)
        writing = raced.write()
        await ended_or_waiting(raced.racing, writing, "SELECT chat_threads.id%")
        waited = not writing.done()
    published = await writing

    assert (published, *await raced.shown()) == (False, "invalidated", None)
    assert waited, "the task waited for the deletion"


async def test_a_deletion_of_a_conversation_an_export_is_recording_waits_for_the_record(
    raced: Raced, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's task has recorded that its file holds the conversation, not yet
    committed, when the visitor deletes it: the deletion waits for the record, finds it and
    invalidates the export, whose task then does not publish the file. Had it not waited,
    it would not have seen the record, and the task, finishing before the deletion's commit,
    would have found the conversation still there."""
    recorded, release, deleted = asyncio.Event(), asyncio.Event(), asyncio.Event()
    hold, finish = repository.hold_threads, exports._finish

    async def holding(
        session: AsyncSession, tenant_id: uuid.UUID, export_id: uuid.UUID, thread_ids: Sequence[str]
    ) -> None:
        await hold(session, tenant_id, export_id, thread_ids)
        recorded.set()
        await release.wait()

    async def finishing(
        sessions: Sessionmaker, tenant_id: uuid.UUID, export_id: uuid.UUID, size: int | None
    ) -> bool:
        await deleted.wait()
        return await finish(sessions, tenant_id, export_id, size)

    monkeypatch.setattr(repository, "hold_threads", holding)
    monkeypatch.setattr(exports, "_finish", finishing)
    writing = raced.write()
    await recorded.wait()
    sessions = raced.racing.app.state.sessionmaker
    async with session_scope(sessions, tenant=raced.tenant.id) as deletion:
        deleting = asyncio.create_task(raced.delete(deletion))
        await ended_or_waiting(raced.racing, deleting, "SELECT chat_threads.tenant_id%")
        waited = not deleting.done()
        release.set()
        await deleting
        deleted.set()
        # The task finishes before the deletion commits, or waits for the export it locked.
        await ended_or_waiting(raced.racing, writing, "SELECT conversation_exports%")
    published = await writing

    assert (published, *await raced.shown()) == (False, "invalidated", None)
    assert waited, "the deletion waited for the record"


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
