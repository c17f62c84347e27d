"""Knowledge bases' tasks while the database goes away (PostgreSQL through a proxy the test
cuts, ``tests/proxy.py``): what the ingest task made at OpenAI before it could write it
down is taken back, never left in the tenant's (or the operator's) project for nobody."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from kithost.db import session_scope
from kithost.knowledge import ingest
from kithost.knowledge.tasks import remove as remove_task
from kithost.models import DocumentStatus, KnowledgeBase, KnowledgeDocument
from kithost.storage import storage_for
from kithost.worker.database import RETRY
from tests.factories import bare_tenant
from tests.fakes.openai_server import FakeOpenAI
from tests.knowledge.helpers import GUIDE
from tests.proxy import CuttableProxy, through_proxy
from tests.workers import RecordedTasks

__all__ = ["through_proxy"]  # the fixture


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
