"""Knowledge bases changed by two transactions at once (PostgreSQL, connections of their
own): an upload and the base's deletion, two uploads near the cap, a document settled by
the ingest task while it is deleted, and two ingest tasks finding the base's vector store
lost. The base (or document) is locked first, so the second waits for the first and then
sees what it did."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kithost.auth.principals import ClientPrincipal, TenantAccess
from kithost.auth.roles import ALL_SCOPES
from kithost.db import create_sessionmaker, session_scope
from kithost.errors import Conflict, InvalidInput, NotFound
from kithost.kit.crypto import SecretBox
from kithost.knowledge import ingest, repository, service
from kithost.knowledge.tasks import remove as remove_task
from kithost.models import (
    ApiClient,
    DocumentStatus,
    KnowledgeBase,
    KnowledgeDocument,
    Tenant,
    Widget,
)
from kithost.models.knowledge import MAX_KNOWLEDGE_BASES
from kithost.settings import Settings
from kithost.storage import BlobStorage, LocalDiskStorage, storage_for
from kithost.widgets import service as widgets
from kithost.worker.app import create_celery
from kithost.worker.enqueue import PendingTasks
from tests.conftest import concurrent_sessions
from tests.fakes.openai_server import FakeOpenAI
from tests.knowledge.helpers import blobs, filler
from tests.workers import RecordedTasks

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def raced(engine: AsyncEngine) -> AsyncIterator[tuple[Sessions, TenantAccess, uuid.UUID]]:
    """Committed: a tenant with one knowledge base; the sessions, an API client's access
    and the base's id. Deleted after."""
    sessionmaker = concurrent_sessions(engine)
    async with sessionmaker() as setup:
        tenant = Tenant(slug=f"race-{uuid.uuid4().hex[:8]}", name="Race")
        setup.add(tenant)
        await setup.flush()
        base = KnowledgeBase(tenant_id=tenant.id, name="Help centre")
        setup.add(base)
        await setup.commit()
    backend = ClientPrincipal(ApiClient(client_id="kc_race"), ALL_SCOPES)
    try:
        yield sessionmaker, TenantAccess(tenant, backend, ALL_SCOPES, None), base.id
    finally:
        async with sessionmaker() as cleanup:
            await cleanup.execute(delete(Tenant).where(Tenant.id == tenant.id))
            await cleanup.commit()


def upload(
    session: AsyncSession, storage: BlobStorage, access: TenantAccess, base_id: uuid.UUID
) -> Coroutine[Any, Any, KnowledgeDocument]:
    blobs = service.NewBlobs(storage)
    return service.add_document(
        session,
        blobs,
        access,
        base_id,
        filename="guide.md",
        data=b"# Guide",
        limit=1000,
        quota=1024**3,
    )


class HeldStorage(LocalDiskStorage):
    """Disk storage whose writes wait, once begun (``writing``), until ``released``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writing, self.released = asyncio.Event(), asyncio.Event()

    async def put(self, key: str, data: bytes) -> None:
        self.writing.set()
        await self.released.wait()
        await super().put(key, data)


async def waits(task: asyncio.Task[Any]) -> None:
    await asyncio.sleep(0.3)
    assert not task.done(), "the second transaction waits for the first's lock"


async def test_an_upload_during_the_bases_deletion_finds_no_base(
    raced: tuple[Sessions, TenantAccess, uuid.UUID], settings: Settings
) -> None:
    sessionmaker, access, base_id = raced
    storage = storage_for(settings)
    async with sessionmaker() as deleting, sessionmaker() as uploading:
        await service.delete_base(deleting, access, base_id)
        uploaded = asyncio.create_task(upload(uploading, storage, access, base_id))
        await waits(uploaded)
        await deleting.commit()
        with pytest.raises(NotFound):
            await uploaded
    assert blobs(storage, access.tenant.id) == [], "a blob was kept"


async def test_uploads_at_once_stop_at_the_cap(
    raced: tuple[Sessions, TenantAccess, uuid.UUID], settings: Settings
) -> None:
    sessionmaker, access, base_id = raced
    storage = storage_for(settings)
    async with sessionmaker() as setup:
        setup.add_all(filler(access.tenant.id, base_id, service.MAX_DOCUMENTS - 1))
        await setup.commit()
    async with sessionmaker() as first, sessionmaker() as second:
        last = await upload(first, storage, access, base_id)
        other = asyncio.create_task(upload(second, storage, access, base_id))
        await waits(other)
        await first.commit()
        with pytest.raises(Conflict) as refused:
            await other
    assert refused.value.code == "knowledge_base_full"
    assert blobs(storage, access.tenant.id) == [ingest.blob_key(access.tenant.id, last.id)]


async def test_an_uploads_bytes_are_stored_with_the_base_unlocked(
    raced: tuple[Sessions, TenantAccess, uuid.UUID], settings: Settings
) -> None:
    """While an upload's bytes are being written (seconds on S3), another upload to the
    same base completes: the base is locked only to count and insert. (Its lock timeout
    only ends the wait should the first hold the base: then it would wait forever.)"""
    sessionmaker, access, base_id = raced
    storage = storage_for(settings)
    assert isinstance(storage, LocalDiskStorage)
    held = HeldStorage(storage.root)
    async with sessionmaker() as first, sessionmaker() as second:
        storing = asyncio.create_task(upload(first, held, access, base_id))
        await held.writing.wait()
        await second.execute(text("SET LOCAL lock_timeout = '5s'"))
        other = await upload(second, storage, access, base_id)
        await second.commit()
        held.released.set()
        stored = await storing
        await first.commit()
    async with sessionmaker() as check:
        kept = await repository.list_documents(check, access.tenant.id, [base_id])
    assert {d.id for d in kept} == {other.id, stored.id}
    keys = sorted(ingest.blob_key(access.tenant.id, d.id) for d in kept)
    assert blobs(storage, access.tenant.id) == keys


async def test_a_document_deleted_while_it_is_settled_is_gone(
    raced: tuple[Sessions, TenantAccess, uuid.UUID], settings: Settings, engine: AsyncEngine
) -> None:
    sessionmaker, access, base_id = raced
    units = create_sessionmaker(engine, PendingTasks(create_celery(settings)))  # the task's
    async with sessionmaker() as setup:
        document = await upload(setup, storage_for(settings), access, base_id)
        await setup.commit()
    async with sessionmaker() as deleting:
        await service.delete_document(deleting, access, base_id, document.id)
        await deleting.flush()
        settled = asyncio.create_task(ingest.settle(units, access.tenant.id, document.id, None))
        await waits(settled)
        await deleting.commit()
    assert await settled is None


@pytest.mark.parametrize("deleted", ["document", "base", "tenant"])
async def test_a_file_id_written_during_a_deletion_is_removed_from_openai(
    raced: tuple[Sessions, TenantAccess, uuid.UUID],
    settings: Settings,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    deleted: str,
) -> None:
    """The ingest task writes the id of the file it just made at OpenAI (the document
    locked) while the document, its base or its tenant is being deleted: the deletion waits
    for it and takes that file back too, never leaving it at OpenAI for nobody."""
    sessionmaker, access, base_id = raced
    celery, sent = create_celery(settings), RecordedTasks()
    monkeypatch.setattr(celery, "send_task", sent.record)
    units = create_sessionmaker(engine, PendingTasks(celery))  # the request's
    async with sessionmaker() as setup:
        document = await upload(setup, storage_for(settings), access, base_id)
        await setup.commit()

    async def delete() -> None:
        async with session_scope(units) as session:
            if deleted == "document":
                await service.delete_document(session, access, base_id, document.id)
            elif deleted == "base":
                await service.delete_base(session, access, base_id)
            else:  # the tenant's part of its deletion (the fixture deletes the tenant after)
                await service.delete_tenant_knowledge(session, access.tenant)

    async with sessionmaker() as ingesting:
        found = await repository.get_document(ingesting, access.tenant.id, document.id, lock=True)
        assert found is not None
        found.file_id = "file-made-meanwhile"
        await ingesting.flush()
        deleting = asyncio.create_task(delete())
        await waits(deleting)
        await ingesting.commit()
    await deleting
    [(_, _, file_ids, _, _, _)] = sent.take(remove_task.name)
    assert file_ids == ["file-made-meanwhile"], "the file made meanwhile was left at OpenAI"


async def test_bases_made_at_once_stop_at_the_cap(
    raced: tuple[Sessions, TenantAccess, uuid.UUID],
) -> None:
    sessionmaker, access, _ = raced
    async with sessionmaker() as setup:
        setup.add_all(
            KnowledgeBase(tenant_id=access.tenant.id, name=f"Base {n}")
            for n in range(MAX_KNOWLEDGE_BASES - 2)  # and the fixture's
        )
        await setup.commit()
    async with sessionmaker() as first, sessionmaker() as second:
        await service.create_base(first, access, name="Last", description="")
        other = asyncio.create_task(
            service.create_base(second, access, name="One more", description="")
        )
        await waits(other)
        await first.commit()
        with pytest.raises(Conflict) as refused:
            await other
    assert refused.value.code == "knowledge_bases_full"


async def test_a_draft_naming_the_base_and_its_deletion_take_turns(
    raced: tuple[Sessions, TenantAccess, uuid.UUID],
) -> None:
    """Either the deletion waits for the draft and finds it searching the base (409), or the
    draft waits for the deletion and finds no base (422): never a draft naming a base gone."""
    sessionmaker, access, base_id = raced
    config = {
        "agent": {"tools": [{"type": "file_search", "id": "kb", "knowledge_bases": [str(base_id)]}]}
    }

    def draft(session: AsyncSession, name: str) -> Coroutine[Any, Any, Any]:
        return widgets.create_widget(session, access.actor, access.tenant, name=name, config=config)

    async with sessionmaker() as drafting, sessionmaker() as deleting:
        await draft(drafting, "Searching")
        deleted = asyncio.create_task(service.delete_base(deleting, access, base_id))
        await waits(deleted)
        await drafting.commit()
        with pytest.raises(Conflict) as in_use:
            await deleted
    assert in_use.value.code == "knowledge_base_in_use"

    async with sessionmaker() as cleanup:
        await cleanup.execute(delete(Widget).where(Widget.tenant_id == access.tenant.id))
        await cleanup.commit()
    async with sessionmaker() as deleting, sessionmaker() as drafting:
        await service.delete_base(deleting, access, base_id)
        drafted = asyncio.create_task(draft(drafting, "Too late"))
        await waits(drafted)
        await deleting.commit()
        with pytest.raises(InvalidInput) as gone:
            await drafted
    assert [e.type for e in gone.value.errors or []] == ["knowledge_base_not_found"]


async def test_two_tasks_finding_the_store_lost_make_one_new_store(
    raced: tuple[Sessions, TenantAccess, uuid.UUID],
    settings: Settings,
    engine: AsyncEngine,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two documents' tasks at once, the base's vector store deleted at OpenAI: the base
    forgets it once, one new store holds both (a store both made is taken back by the
    removal task), and the document the lost one held fails."""
    sessionmaker, access, base_id = raced
    tenant_id, the_base = access.tenant.id, KnowledgeBase.id == base_id
    settings = settings.model_copy(update={"openai_base_url": fake_openai.base_url})
    box, storage = SecretBox(settings.keys()), storage_for(settings)
    celery, sent = create_celery(settings), RecordedTasks()
    monkeypatch.setattr(celery, "send_task", sent.record)
    units = create_sessionmaker(engine, PendingTasks(celery))  # the tasks'
    async with sessionmaker() as setup:
        key = box.encrypt(fake_openai.api_key)
        await setup.execute(update(Tenant).where(Tenant.id == tenant_id).values(openai_api_key=key))
        await setup.execute(
            update(KnowledgeBase).where(the_base).values(vector_store_id="vs_deleted_at_openai")
        )
        held = KnowledgeDocument(
            tenant_id=tenant_id,
            knowledge_base_id=base_id,
            filename="held.md",
            content_type="text/markdown",
            size_bytes=1,
            status=DocumentStatus.ready,
            file_id="file-held",
        )
        setup.add(held)
        documents = [await upload(setup, storage, access, base_id) for _ in range(2)]
        await setup.commit()

    statuses = await asyncio.gather(
        *(ingest.ingest(units, settings, box, storage, tenant_id, d.id) for d in documents)
    )
    for _, store_id, file_ids, blob_keys, whole, key in sent.take(remove_task.name):
        await ingest.remove(
            units, settings, box, storage, tenant_id, store_id, file_ids, blob_keys, whole, key
        )

    assert statuses == [DocumentStatus.ready, DocumentStatus.ready]
    [(store, kept)] = fake_openai.vector_stores.stores.items()
    assert len(kept["file_ids"]) == 2
    async with sessionmaker() as check:
        assert await check.scalar(select(KnowledgeBase.vector_store_id).where(the_base)) == store
        failed = select(KnowledgeDocument.status, KnowledgeDocument.failure_reason)
        [lost] = (await check.execute(failed.where(KnowledgeDocument.id == held.id))).all()
        assert tuple(lost) == (DocumentStatus.failed, ingest.LOST)
