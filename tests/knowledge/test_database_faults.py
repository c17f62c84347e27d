"""Knowledge bases while the database fails: an upload whose unit of work does not commit
keeps no bytes, and what the ingest task made at OpenAI before it could write it down
(PostgreSQL through a proxy the test cuts, ``tests/proxy.py``) is taken back, never left in
the tenant's (or the operator's) project for nobody."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.db import session_scope
from kithost.knowledge import ingest
from kithost.knowledge.ingest import blob_key
from kithost.knowledge.tasks import ingest as ingest_task
from kithost.knowledge.tasks import remove as remove_task
from kithost.models import DocumentStatus, KnowledgeBase, KnowledgeDocument
from kithost.storage import storage_for
from kithost.worker.database import RETRY
from tests.factories import bare_tenant
from tests.fakes.openai_server import FakeOpenAI
from tests.knowledge.helpers import BASES, GUIDE, blobs, editor_of_acme, new_base, upload
from tests.proxy import CuttableProxy, through_proxy
from tests.workers import RecordedTasks

__all__ = ["through_proxy"]  # the fixture


async def test_an_upload_whose_commit_fails_keeps_no_bytes(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bytes are stored before the base is locked; the database goes away as the
    request's unit of work commits: the upload is refused (503) and its bytes are deleted,
    no document naming them."""
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await new_base(client, editor)
    commit = AsyncSession.commit

    async def gone(session: AsyncSession) -> None:
        raise OperationalError("COMMIT", None, ConnectionResetError("the database went away"))

    monkeypatch.setattr(AsyncSession, "commit", gone)
    refused = await upload(client, editor, base, GUIDE)
    monkeypatch.setattr(AsyncSession, "commit", commit)

    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "database_unavailable"
    assert blobs(storage_for(app.state.settings), tenant.id) == [], "its bytes were kept"
    assert tasks.take(ingest_task.name) == []
    shown = await client.get(f"{BASES}/{base}", headers=editor.headers)
    assert shown.json()["files"] == []


async def test_an_upload_committed_keeps_its_bytes_whatever_fails_after(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The document is committed, then its ingest task cannot be sent (the broker away):
    the document keeps its bytes, for the task sent again."""
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await new_base(client, editor)

    def broker_gone(*_: object, **__: object) -> None:
        raise ConnectionRefusedError("the broker went away")

    monkeypatch.setattr(app.state.celery, "send_task", broker_gone)
    await upload(client, editor, base, GUIDE)

    [kept] = (await client.get(f"{BASES}/{base}", headers=editor.headers)).json()["files"]
    assert blobs(storage_for(app.state.settings), tenant.id) == [blob_key(tenant.id, kept["id"])]


@pytest.mark.parametrize("made", ["files", "vector_stores"])
async def test_what_openai_made_as_the_database_goes_away_is_taken_back(
    through_proxy: tuple[FastAPI, CuttableProxy],
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    made: str,
) -> None:
    """OpenAI makes the document's file (or its base's vector store); the database is gone
    before the task writes its id down. The task fails (retried: ``RETRY``) and has the
    removal task take it back; its retry, the database back, makes it again: one file and
    one store at OpenAI, the document's and its base's."""
    app, proxy = through_proxy
    settings = app.state.settings.model_copy(update={"openai_base_url": fake_openai.base_url})
    box, storage, sent = app.state.secret_box, storage_for(settings), RecordedTasks()
    monkeypatch.setattr(app.state.celery, "send_task", sent.record)
    async with session_scope(app.state.sessionmaker) as session:
        tenant = await bare_tenant(session, "kb-faults")
        tenant.openai_api_key = box.encrypt(fake_openai.api_key)
        base = KnowledgeBase(tenant_id=tenant.id, name="Help")
        session.add(base)
        await session.flush()
        filename, data, content_type = GUIDE
        document = KnowledgeDocument(
            tenant_id=tenant.id,
            knowledge_base_id=base.id,
            filename=filename,
            content_type=content_type,
            size_bytes=len(data),
        )
        session.add(document)
    await storage.put(ingest.blob_key(tenant.id, document.id), data)

    def ingesting() -> asyncio.Task[DocumentStatus | None]:
        work = ingest.ingest(app.state.sessionmaker, settings, box, storage, tenant.id, document.id)
        return asyncio.create_task(work)

    fake_openai.hold_answer("POST", f"/v1/{made}")
    first = ingesting()
    assert await asyncio.to_thread(fake_openai.holding.wait, 10)
    await proxy.cut()
    fake_openai.release()
    with pytest.raises(RETRY["autoretry_for"]):
        await first
    await proxy.restore()
    fake = fake_openai.vector_stores
    [first_made] = fake.files if made == "files" else fake.stores

    for _, store_id, file_ids, blob_keys, whole, key in sent.take(remove_task.name):
        await ingest.remove(
            app.state.sessionmaker,
            settings,
            box,
            storage,
            tenant.id,
            store_id,
            file_ids,
            blob_keys,
            whole,
            key,
        )
    assert first_made not in {*fake.files, *fake.stores}, "it was left at OpenAI"

    assert await ingesting() is DocumentStatus.ready
    async with session_scope(app.state.sessionmaker) as session:
        kept = await session.get_one(KnowledgeDocument, document.id)
        kept_base = await session.get_one(KnowledgeBase, base.id)
    assert (list(fake.files), list(fake.stores)) == ([kept.file_id], [kept_base.vector_store_id])
