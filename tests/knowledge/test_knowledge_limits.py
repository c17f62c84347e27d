"""What a knowledge base refuses so that nothing is left half-working or kept for nobody: a
base a widget searches is not deleted from under it (draft or published), a tenant's bases
are counted (made or adopted, one creation at a time), an upload is kept under its own name
without the client's directories and is not empty, a document that failed keeps no bytes in
the blob store, and a tenant's documents keep within its quota of bytes."""

from __future__ import annotations

import uuid
from collections.abc import Coroutine
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import ClientPrincipal, TenantAccess
from kithost.auth.roles import ALL_SCOPES
from kithost.errors import Conflict
from kithost.knowledge import service
from kithost.knowledge.ingest import blob_key
from kithost.models import ApiClient, KnowledgeBase, KnowledgeDocument
from kithost.models.knowledge import MAX_KNOWLEDGE_BASES
from kithost.settings import Settings
from kithost.storage import storage_for
from kithost.widgets.adoption import FULL
from tests.factories import make_tenant
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.vector_stores import UNINDEXABLE
from tests.knowledge.helpers import (
    BASES,
    GUIDE,
    blobs,
    editor_of_acme,
    filler,
    new_base,
    run_ingest,
    upload,
)
from tests.widgets.conftest import acme
from tests.widgets.helpers import Acme, create, url
from tests.workers import RecordedTasks

__all__ = ["acme"]


def searching(*bases: str) -> dict[str, Any]:
    tools = [{"type": "file_search", "id": "knowledge", "knowledge_bases": list(bases)}]
    return {"agent": {"tools": tools if bases else []}}


async def put_config(
    client: httpx2.AsyncClient, acme: Acme, widget: str, etag: str, config: dict[str, Any]
) -> str:
    put = await client.put(widget + "/config", json=config, headers=acme.matching(etag))
    assert put.status_code == 200, put.text
    return put.headers["etag"]


async def test_a_base_a_widget_searches_is_not_deleted(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    created = await client.post(BASES, json={"name": "Help centre"}, headers=acme.headers)
    base = created.json()["id"]
    widget = url(await create(client, acme))
    etag = await put_config(client, acme, widget, '"1"', searching(base))
    # A widget naming the base only in its instructions does not search it.
    other = url(await create(client, acme, name="Other"))
    mention = {"agent": {"instructions": f"Knowledge base {base} is the help centre."}}
    await put_config(client, acme, other, '"1"', mention)

    refused = await client.delete(f"{BASES}/{base}", headers=acme.headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "knowledge_base_in_use"
    assert "Shop chat (draft)" in refused.json()["detail"]
    assert "Other" not in refused.json()["detail"]

    published = await client.post(widget + "/publish", headers=acme.matching(etag))
    assert published.status_code == 200, published.text
    etag = await put_config(client, acme, widget, published.headers["etag"], searching())
    refused = await client.delete(f"{BASES}/{base}", headers=acme.headers)
    assert refused.status_code == 409, refused.text
    assert "Shop chat (published)" in refused.json()["detail"]
    assert "(draft)" not in refused.json()["detail"]

    published = await client.post(widget + "/publish", headers=acme.matching(etag))
    assert published.status_code == 200, published.text
    deleted = await client.delete(f"{BASES}/{base}", headers=acme.headers)
    assert deleted.status_code == 204, deleted.text
    shown = await client.get(widget, headers=acme.headers)
    assert shown.json()["config"]["agent"]["tools"] == []


async def test_a_draft_naming_a_base_gone_is_not_published(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    """A draft saved before bases in use were kept (or by any other way the base went) is
    checked again when published: the live widget would search nothing."""
    created = await client.post(BASES, json={"name": "Help centre"}, headers=acme.headers)
    base = created.json()["id"]
    widget = url(await create(client, acme))
    etag = await put_config(client, acme, widget, '"1"', searching(base))
    await db.execute(delete(KnowledgeBase).where(KnowledgeBase.id == uuid.UUID(base)))

    refused = await client.post(widget + "/publish", headers=acme.matching(etag))
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["field"] == "config.agent.tools.0.knowledge_bases"
    assert error["type"] == "knowledge_base_not_found"


async def test_a_tenant_has_at_most_so_many_bases_made_or_adopted(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    db.add_all(
        KnowledgeBase(tenant_id=acme.tenant.id, name=f"Base {n}")
        for n in range(MAX_KNOWLEDGE_BASES - 1)
    )
    await db.flush()
    assert (await client.post(BASES, json={"name": "Last"}, headers=acme.headers)).is_success
    refused = await client.post(BASES, json={"name": "One more"}, headers=acme.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "knowledge_bases_full"

    fake_openai.project_keys.add("sk-acme-own-project-key")
    put = await client.put(
        "/api/v1/tenants/acme/openai-key",
        json={"api_key": "sk-acme-own-project-key"},
        headers=acme.headers,
    )
    assert put.is_success, put.text
    store = fake_openai.vector_stores.add("sk-acme-own-project-key")
    code = f"a = Agent(name='A', tools=[FileSearchTool(vector_store_ids=[{store!r}])])"
    widget = url(await create(client, acme))
    answer = await client.post(
        widget + "/agent-import", json={"code": code}, headers=acme.matching('"1"')
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["config"]["agent"]["tools"] == []
    assert answer.json()["not_carried"] == [
        {"line": 1, "what": f"vector store {store}", "instead": FULL}
    ]
    listed = await client.get(BASES, headers=acme.headers)
    assert len(listed.json()) == MAX_KNOWLEDGE_BASES


async def test_an_upload_keeps_its_own_name_and_is_not_empty(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    _, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await new_base(client, editor)
    names = []
    for sent in ("../../etc/guide.md", "C:\\Users\\ann\\faq.txt", "docs/a\\b.md"):
        uploaded = await upload(client, editor, base, (sent, b"# Hi", "text/markdown"))
        assert uploaded.status_code == 202, uploaded.text
        names.append(uploaded.json()["filename"])
    assert names == ["guide.md", "faq.txt", "b.md"]
    empty = await upload(client, editor, base, ("empty.md", b"", "text/markdown"))
    assert empty.status_code == 422, empty.text
    assert [(e["field"], e["type"]) for e in empty.json()["errors"]] == [("file", "empty")]
    shown = await client.get(f"{BASES}/{base}", headers=editor.headers)
    assert [f["filename"] for f in shown.json()["files"]] == names


async def test_a_failed_document_keeps_no_bytes(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await new_base(client, editor)
    broken = await upload(client, editor, base, ("broken.pdf", UNINDEXABLE, "x"))
    assert broken.status_code == 202, broken.text
    assert await run_ingest(app, tasks) == ["failed"]
    storage = storage_for(app.state.settings)
    key = blob_key(tenant.id, uuid.UUID(broken.json()["id"]))
    assert await storage.get(key) is None, "a failed document's bytes were kept"
    assert (await upload(client, editor, base, GUIDE)).status_code == 202


async def test_a_tenants_documents_hold_at_most_its_quota_together(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counted across its bases, whatever their status; an upload past it is refused before
    its bytes are stored, and a deleted document makes room again."""
    quota = {"knowledge_max_bytes_per_tenant": 2048}
    monkeypatch.setattr(app.state, "settings", app.state.settings.model_copy(update=quota))
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    bases = [await new_base(client, editor), await new_base(client, editor)]
    kept = [await upload(client, editor, b, ("a.md", b"#" * 1024, "text/markdown")) for b in bases]
    assert [k.status_code for k in kept] == [202, 202], kept[-1].text

    one_more = ("b.md", b"#", "text/markdown")
    refused = await upload(client, editor, bases[0], one_more)
    assert refused.status_code == 413, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "knowledge_quota_exceeded"
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [
        ("file", "knowledge_quota_exceeded")
    ]
    storage = storage_for(app.state.settings)
    assert blobs(storage, tenant.id) == sorted(blob_key(tenant.id, k.json()["id"]) for k in kept)

    deleted = await client.delete(
        f"{BASES}/{bases[1]}/documents/{kept[1].json()['id']}", headers=editor.headers
    )
    assert deleted.status_code == 204, deleted.text
    assert (await upload(client, editor, bases[0], one_more)).status_code == 202


async def test_an_upload_refused_deletes_its_own_bytes_only(
    db: AsyncSession, settings: Settings
) -> None:
    """Two uploads in one unit of work, the second refused (its base full): its bytes are
    deleted, the first's kept."""
    tenant = await make_tenant(db)
    base = KnowledgeBase(tenant_id=tenant.id, name="Help")
    db.add(base)
    await db.flush()
    db.add_all(filler(tenant.id, base.id, service.MAX_DOCUMENTS - 1))
    backend = ClientPrincipal(ApiClient(client_id="kc_limits"), ALL_SCOPES)
    access = TenantAccess(tenant, backend, ALL_SCOPES, None)
    storage = storage_for(settings)
    new = service.NewBlobs(storage)

    def add() -> Coroutine[Any, Any, KnowledgeDocument]:
        return service.add_document(
            db, new, access, base.id, filename="a.md", data=b"#", limit=1024, quota=1024**3
        )

    kept = await add()
    with pytest.raises(Conflict) as full:
        await add()
    assert full.value.code == "knowledge_base_full"
    assert blobs(storage, tenant.id) == [blob_key(tenant.id, kept.id)]
