"""What the knowledge base tests share: an app keeping the tasks it sends, running them as a
worker would (in the test's transaction), and a tenant with a base and its documents."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.knowledge import ingest
from kithost.knowledge.tasks import ingest as ingest_task
from kithost.knowledge.tasks import remove as remove_task
from kithost.models import KnowledgeDocument, Role, Tenant
from kithost.settings import Settings
from kithost.storage import BlobStorage, LocalDiskStorage, storage_for
from tests.conftest import create_test_app
from tests.factories import Credentials, login, make_member, make_tenant
from tests.fakes.openai_server import FakeOpenAI
from tests.workers import RecordedTasks

GUIDE = ("guide.md", b"# Returns\n\nReturns are free within 30 days.\n", "text/markdown")


@pytest.fixture
def tasks() -> RecordedTasks:
    """The tasks the app sends, for the test to run (``run_ingest``, ``run_remove``)."""
    return RecordedTasks()


@pytest.fixture
def app(
    settings: Settings,
    connection: AsyncConnection,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
    monkeypatch: pytest.MonkeyPatch,
) -> FastAPI:
    """The app on the fake OpenAI server, keeping the tasks it sends in ``tasks`` (a
    fixture: import it, with ``tasks``, where it replaces the usual ``app``)."""
    return knowledge_app(settings, connection, fake_openai, tasks, monkeypatch)


def knowledge_app(
    settings: Settings,
    connection: AsyncConnection,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
    monkeypatch: pytest.MonkeyPatch,
    **overrides: object,
) -> FastAPI:
    """:func:`app`'s app, its settings changed by ``overrides``."""
    app = create_test_app(settings, connection, openai_base_url=fake_openai.base_url, **overrides)
    monkeypatch.setattr(app.state.celery, "send_task", tasks.record)
    return app


BASES = "/api/v1/tenants/acme/knowledge-bases"


async def editor_of_acme(
    app: FastAPI, db: AsyncSession, client: httpx2.AsyncClient, key: str | None
) -> tuple[Tenant, Credentials]:
    """Tenant ``acme`` (with OpenAI key ``key``) and one of its editors."""
    tenant = await make_tenant(db, "acme")
    if key is not None:
        owner = await login(app, db, await make_member(db, tenant, Role.owner))
        put = await client.put(
            "/api/v1/tenants/acme/openai-key", json={"api_key": key}, headers=owner.headers
        )
        assert put.is_success, put.text
    return tenant, await login(app, db, await make_member(db, tenant, Role.editor))


async def new_base(client: httpx2.AsyncClient, editor: Credentials) -> str:
    created = await client.post(
        BASES, json={"name": "Help centre", "description": "FAQ"}, headers=editor.headers
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def upload(
    client: httpx2.AsyncClient, editor: Credentials, base: str, file: tuple[str, bytes, str]
) -> httpx2.Response:
    return await client.post(
        f"{BASES}/{base}/documents", files={"file": file}, headers=editor.headers
    )


async def run_ingest(app: FastAPI, tasks: RecordedTasks) -> list[str | None]:
    """Run every ingest task sent so far; the documents' statuses after."""
    settings: Settings = app.state.settings
    statuses = []
    for tenant_id, document_id in tasks.take(ingest_task.name):
        status = await ingest.ingest(
            app.state.sessionmaker,
            settings,
            app.state.secret_box,
            storage_for(settings),
            uuid.UUID(tenant_id),
            uuid.UUID(document_id),
        )
        statuses.append(None if status is None else status.value)
    return statuses


async def run_remove(app: FastAPI, tasks: RecordedTasks) -> int:
    """Run every removal task sent so far; how many."""
    settings: Settings = app.state.settings
    removals = tasks.take(remove_task.name)
    for tenant_id, store_id, file_ids, blob_keys, whole, tenant_key in removals:
        await ingest.remove(
            app.state.sessionmaker,
            settings,
            app.state.secret_box,
            storage_for(settings),
            uuid.UUID(tenant_id),
            store_id,
            file_ids,
            blob_keys,
            whole,
            tenant_key,
        )
    return len(removals)


def blobs(storage: BlobStorage, tenant_id: uuid.UUID) -> list[str]:
    """The keys of the tenant's knowledge blobs on disk."""
    assert isinstance(storage, LocalDiskStorage)
    kept = storage._path(f"knowledge/{tenant_id}")
    return sorted(f"knowledge/{tenant_id}/{p.name}" for p in kept.glob("*") if p.is_file())


def filler(tenant_id: uuid.UUID, base_id: uuid.UUID, count: int) -> list[KnowledgeDocument]:
    """``count`` documents of one byte in the base (``n.md``, processing), to add."""
    return [
        KnowledgeDocument(
            tenant_id=tenant_id,
            knowledge_base_id=base_id,
            filename=f"{n}.md",
            content_type="text/markdown",
            size_bytes=1,
        )
        for n in range(count)
    ]
