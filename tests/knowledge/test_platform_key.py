"""A tenant without an OpenAI key of its own has its knowledge handed to OpenAI with the
platform's key (``KITHOST_OPENAI_API_KEY``), in the operator's OpenAI project. Once it sets
its own key, that key does not reach what the platform's made (the fake's ``projects``:
another project's files and stores are 404); deleting the documents, the base or the
tenant still removes them there, with the platform's key, and a store the tenant's key
finds lost is removed there too, with the files it held."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.knowledge import ingest
from kithost.models import KnowledgeBase, Role
from kithost.settings import Settings
from tests.factories import Credentials, login, make_member
from tests.fakes.openai_server import FakeOpenAI
from tests.knowledge.helpers import (
    BASES,
    GUIDE,
    editor_of_acme,
    knowledge_app,
    new_base,
    run_ingest,
    run_remove,
    upload,
)
from tests.workers import RecordedTasks

OWN_KEY = "sk-acme-own-project-key"
FAQ = ("faq.txt", b"Q: Do you ship abroad? A: Yes.", "text/plain")


@pytest.fixture
def app(
    settings: Settings,
    connection: AsyncConnection,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
    monkeypatch: pytest.MonkeyPatch,
) -> FastAPI:
    """The knowledge app with the platform's key: the fake's own, in a project of its own."""
    fake_openai.projects = True
    fake_openai.project_keys.add(OWN_KEY)
    platform_key = SecretStr(fake_openai.api_key)
    return knowledge_app(
        settings, connection, fake_openai, tasks, monkeypatch, openai_api_key=platform_key
    )


async def indexed_then_own_key(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake: FakeOpenAI,
    tasks: RecordedTasks,
) -> tuple[Credentials, Credentials, str, str, str]:
    """Acme, without a key, has ``GUIDE`` indexed in a base (with the platform's key); then
    its owner sets its own key. The owner, an editor, the base, its store and the file."""
    tenant, editor = await editor_of_acme(app, db, client, None)
    base = await new_base(client, editor)
    assert (await upload(client, editor, base, GUIDE)).status_code == 202
    assert await run_ingest(app, tasks) == ["ready"]
    [(store_id, store)] = fake.vector_stores.stores.items()
    [file_id] = store["file_ids"]
    assert fake.owners == {store_id: fake.api_key, file_id: fake.api_key}

    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    put = await client.put(
        "/api/v1/tenants/acme/openai-key", json={"api_key": OWN_KEY}, headers=owner.headers
    )
    assert put.is_success, put.text
    fake.requests.clear()
    return owner, editor, base, store_id, file_id


def deletions(fake: FakeOpenAI) -> list[tuple[str, str]]:
    """The DELETE requests the fake received: path, and whose key (the platform's or the
    tenant's own)."""
    whose = {f"Bearer {fake.api_key}": "platform", f"Bearer {OWN_KEY}": "own"}
    return [
        (r.path, whose[r.headers["authorization"]]) for r in fake.requests if r.method == "DELETE"
    ]


async def test_a_document_made_with_the_platforms_key_is_deleted_with_it(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    _, editor, base, store_id, file_id = await indexed_then_own_key(
        client, app, db, fake_openai, tasks
    )
    [document] = (await client.get(f"{BASES}/{base}", headers=editor.headers)).json()["files"]

    deleted = await client.delete(
        f"{BASES}/{base}/documents/{document['id']}", headers=editor.headers
    )
    assert deleted.status_code == 204, deleted.text
    assert await run_remove(app, tasks) == 1

    assert fake_openai.vector_stores.files == {}
    assert fake_openai.vector_stores.stores[store_id]["file_ids"] == set()
    in_store = f"/v1/vector_stores/{store_id}/files/{file_id}"
    assert deletions(fake_openai) == [
        (in_store, "own"),  # 404: not its project's
        (in_store, "platform"),
        (f"/v1/files/{file_id}", "own"),
        (f"/v1/files/{file_id}", "platform"),
    ]


@pytest.mark.parametrize("deleting", ["base", "tenant"])
async def test_a_base_or_tenant_made_with_the_platforms_key_is_deleted_with_it(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
    deleting: str,
) -> None:
    owner, _, base, store_id, file_id = await indexed_then_own_key(
        client, app, db, fake_openai, tasks
    )

    if deleting == "base":
        deleted = await client.delete(f"{BASES}/{base}", headers=owner.headers)
    else:
        deleted = await client.delete("/api/v1/tenants/acme?confirm=acme", headers=owner.headers)
    assert deleted.status_code == 204, deleted.text
    assert await run_remove(app, tasks) == 1

    assert (fake_openai.vector_stores.files, fake_openai.vector_stores.stores) == ({}, {})
    assert deletions(fake_openai) == [
        (f"/v1/files/{file_id}", "own"),
        (f"/v1/files/{file_id}", "platform"),
        (f"/v1/vector_stores/{store_id}", "own"),
        (f"/v1/vector_stores/{store_id}", "platform"),
    ]


async def test_what_neither_key_finds_is_gone_already(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    owner, _, base, _, _ = await indexed_then_own_key(client, app, db, fake_openai, tasks)
    fake_openai.vector_stores.reset()  # deleted in the operator's dashboard

    deleted = await client.delete(f"{BASES}/{base}", headers=owner.headers)
    assert deleted.status_code == 204, deleted.text
    assert await run_remove(app, tasks) == 1
    assert len(deletions(fake_openai)) == 4


async def test_a_store_lost_to_the_tenants_own_key_is_removed_with_the_platforms(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    """The tenant's own key does not see the store the platform's made: the next upload
    replaces it (its document fails as lost), and the lost store leaves the operator's
    project with the file it held."""
    _, editor, base, lost, file_id = await indexed_then_own_key(client, app, db, fake_openai, tasks)

    assert (await upload(client, editor, base, FAQ)).status_code == 202
    assert await run_ingest(app, tasks) == ["ready"]
    assert await run_remove(app, tasks) == 1  # the lost store's file, taken back

    shown = (await client.get(f"{BASES}/{base}", headers=editor.headers)).json()["files"]
    assert [(f["filename"], f["status"], f["failure_reason"]) for f in shown] == [
        ("guide.md", "failed", ingest.LOST),
        ("faq.txt", "ready", None),
    ]
    db_base = await db.get(KnowledgeBase, uuid.UUID(base), populate_existing=True)
    assert db_base is not None
    [(store_id, store)] = fake_openai.vector_stores.stores.items()
    assert db_base.vector_store_id == store_id != lost
    [faq] = store["file_ids"]
    assert fake_openai.owners[store_id] == fake_openai.owners[faq] == OWN_KEY
    assert list(fake_openai.vector_stores.files) == [faq]
    assert (f"/v1/vector_stores/{lost}", "platform") in deletions(fake_openai)
    assert (f"/v1/files/{file_id}", "platform") in deletions(fake_openai)
