"""Knowledge bases over REST, with OpenAI's Files and Vector Stores APIs played by the fake
server on loopback: an upload is kept, handed to OpenAI by the ingest task and shown ready,
or failed with its reason; deleting takes it back from OpenAI; retries are idempotent;
viewers and other tenants never see or touch a base."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from openai import InternalServerError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.knowledge.ingest import NO_KEY, blob_key
from kithost.knowledge.tasks import ingest as ingest_task
from kithost.models import Role
from kithost.storage import storage_for
from tests.api.helpers import audit_actions
from tests.factories import Credentials, login, make_member, make_tenant
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.vector_stores import UNINDEXABLE
from tests.knowledge.helpers import (
    BASES,
    GUIDE,
    editor_of_acme,
    new_base,
    run_ingest,
    run_remove,
    upload,
)
from tests.workers import RecordedTasks


async def detail(client: httpx2.AsyncClient, editor: Credentials, base: str) -> dict[str, Any]:
    found = await client.get(f"{BASES}/{base}", headers=editor.headers)
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


async def test_an_upload_is_indexed_in_the_bases_vector_store(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await new_base(client, editor)
    uploaded = await upload(client, editor, base, GUIDE)
    assert uploaded.status_code == 202, uploaded.text
    document = uploaded.json()
    assert (document["filename"], document["content_type"], document["status"]) == (
        "guide.md",
        "text/markdown",
        "processing",
    )
    assert document["size_bytes"] == len(GUIDE[1])
    assert (await detail(client, editor, base))["processing"] == 1

    assert await run_ingest(app, tasks) == ["ready"]
    shown = await detail(client, editor, base)
    assert (shown["documents"], shown["processing"], shown["failed"]) == (1, 0, 0)
    assert shown["size_bytes"] == len(GUIDE[1])
    assert [(f["id"], f["status"], f["failure_reason"]) for f in shown["files"]] == [
        (document["id"], "ready", None)
    ]
    [store] = fake_openai.vector_stores.stores.values()
    [file] = fake_openai.vector_stores.files.values()
    assert store["file_ids"] == {file["id"]}
    assert (file["content"], file["purpose"]) == (GUIDE[1], "assistants")
    assert store["metadata"] == {"kithost_knowledge_base": base}
    storage = storage_for(app.state.settings)
    assert await storage.get(blob_key(tenant.id, document["id"])) is None, "bytes kept"
    listed = await client.get(BASES, headers=editor.headers)
    assert [(b["id"], b["name"], b["documents"]) for b in listed.json()] == [
        (base, "Help centre", 1)
    ]
    actions = await audit_actions(db, tenant.id)
    assert {"knowledge_base.created", "knowledge_document.uploaded"} <= set(actions)
    # The task delivered twice (workers acknowledge late) changes nothing.
    tasks.record(ingest_task.name, [str(tenant.id), document["id"]])
    assert await run_ingest(app, tasks) == ["ready"]
    assert len(fake_openai.vector_stores.stores) == 1
    assert len(fake_openai.vector_stores.files) == 1


async def test_a_document_openai_cannot_index_fails_with_the_reason(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    _, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await new_base(client, editor)
    assert (await upload(client, editor, base, ("broken.pdf", UNINDEXABLE, "x"))).is_success
    assert await run_ingest(app, tasks) == ["failed"]
    shown = await detail(client, editor, base)
    assert shown["failed"] == 1
    [file] = shown["files"]
    assert file["content_type"] == "application/pdf"
    assert file["failure_reason"] == "OpenAI could not index it: The file could not be parsed."


async def test_the_list_counts_each_bases_documents_as_the_base_shows_them(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    _, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    bases = []
    for name in ("Mixed", "Empty", "Ready", "Failing"):
        created = await client.post(BASES, json={"name": name}, headers=editor.headers)
        assert created.status_code == 201, created.text
        bases.append(created.json()["id"])
        assert created.json() == await detail(client, editor, bases[-1])
    mixed, _, ready, failing = bases
    for base, file in [
        (mixed, ("a.md", b"# A", "text/markdown")),
        (mixed, ("b.pdf", UNINDEXABLE + b"12", "application/pdf")),
        (ready, ("c.txt", b"C" * 10, "text/plain")),
        (ready, ("d.txt", b"D" * 20, "text/plain")),
        (failing, ("e.pdf", UNINDEXABLE, "application/pdf")),
    ]:
        assert (await upload(client, editor, base, file)).status_code == 202
    assert await run_ingest(app, tasks) == ["ready", "failed", "ready", "ready", "failed"]
    processing = await upload(client, editor, mixed, ("f.html", b"<p>F</p>", "text/html"))
    assert processing.status_code == 202
    # Another tenant's documents count for none of acme's bases.
    other = await make_tenant(db, "other")
    stranger = await login(app, db, await make_member(db, other, Role.owner))
    theirs = await client.post(
        "/api/v1/tenants/other/knowledge-bases", json={"name": "Theirs"}, headers=stranger.headers
    )
    put = await client.post(
        f"/api/v1/tenants/other/knowledge-bases/{theirs.json()['id']}/documents",
        files={"file": GUIDE},
        headers=stranger.headers,
    )
    assert put.status_code == 202, put.text

    listed = await client.get(BASES, headers=editor.headers)
    assert listed.status_code == 200, listed.text
    figures = [
        (b["name"], b["documents"], b["size_bytes"], b["processing"], b["failed"])
        for b in listed.json()
    ]
    assert figures == [
        ("Mixed", 3, 3 + len(UNINDEXABLE) + 2 + 8, 1, 1),
        ("Empty", 0, 0, 0, 0),
        ("Ready", 2, 30, 0, 0),
        ("Failing", 1, len(UNINDEXABLE), 0, 1),
    ]
    for base, shown in zip(bases, listed.json(), strict=True):
        one = await detail(client, editor, base)
        files = one.pop("files")
        assert shown == one
        assert (one["documents"], one["size_bytes"], one["processing"], one["failed"]) == (
            len(files),
            sum(f["size_bytes"] for f in files),
            sum(f["status"] == "processing" for f in files),
            sum(f["status"] == "failed" for f in files),
        ), "the base's figures count the files it shows"


async def test_without_an_openai_key_a_document_fails_and_says_so(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, tasks: RecordedTasks
) -> None:
    _, editor = await editor_of_acme(app, db, client, None)
    base = await new_base(client, editor)
    assert (await upload(client, editor, base, GUIDE)).is_success
    assert await run_ingest(app, tasks) == ["failed"]
    [file] = (await detail(client, editor, base))["files"]
    assert file["failure_reason"] == NO_KEY


async def test_openai_failing_for_a_while_is_retried_without_duplicates(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    _, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await new_base(client, editor)
    assert (await upload(client, editor, base, GUIDE)).is_success
    [sent] = [args for name, args in tasks.sent]
    fake_openai.fail_next(500)
    with pytest.raises(InternalServerError):
        await run_ingest(app, tasks)
    assert (await detail(client, editor, base))["processing"] == 1
    tasks.record("kithost.knowledge.ingest", sent)  # the task's retry
    assert await run_ingest(app, tasks) == ["ready"]
    assert len(fake_openai.vector_stores.stores) == 1
    assert len(fake_openai.vector_stores.files) == 1


async def test_deleting_a_document_or_a_base_removes_it_from_openai(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await new_base(client, editor)
    first = (await upload(client, editor, base, GUIDE)).json()
    second = (await upload(client, editor, base, ("faq.txt", b"Q? A.", "text/plain"))).json()
    assert await run_ingest(app, tasks) == ["ready", "ready"]
    [store] = fake_openai.vector_stores.stores.values()
    assert len(store["file_ids"]) == 2

    gone = await client.delete(f"{BASES}/{base}/documents/{first['id']}", headers=editor.headers)
    assert gone.status_code == 204
    assert await run_remove(app, tasks) == 1
    assert len(store["file_ids"]) == 1
    assert len(fake_openai.vector_stores.files) == 1
    assert [f["id"] for f in (await detail(client, editor, base))["files"]] == [second["id"]]

    assert (await client.delete(f"{BASES}/{base}", headers=editor.headers)).status_code == 204
    [(name, removal)] = tasks.sent
    assert await run_remove(app, tasks) == 1
    assert fake_openai.vector_stores.stores == {}
    assert fake_openai.vector_stores.files == {}
    assert (await client.get(f"{BASES}/{base}", headers=editor.headers)).status_code == 404
    actions = set(await audit_actions(db, tenant.id))
    assert {"knowledge_document.deleted", "knowledge_base.deleted"} <= actions
    # The removal again (a redelivered task): OpenAI no longer knows them, and that is fine.
    tasks.record(name, removal)
    assert await run_remove(app, tasks) == 1


@pytest.mark.parametrize(
    ("file", "status", "code"),
    [
        (("run.exe", b"MZ", "application/octet-stream"), 415, "unsupported_document_type"),
        (("notes", b"no extension", "text/plain"), 415, "unsupported_document_type"),
        (("big.txt", b"x" * (10 * 1024 * 1024 + 1), "text/plain"), 413, "payload_too_large"),
    ],
)
async def test_uploads_it_cannot_take_are_refused(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    tasks: RecordedTasks,
    file: tuple[str, bytes, str],
    status: int,
    code: str,
) -> None:
    _, editor = await editor_of_acme(app, db, client, None)
    base = await new_base(client, editor)
    refused = await upload(client, editor, base, file)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == code
    assert (await detail(client, editor, base))["documents"] == 0
    assert tasks.sent == []


@pytest.mark.parametrize(
    "name", ["a" * 300 + ".md", "é" * 253 + ".md", "a\x00b.md", "a\u202etxt.exe.md", "a\u200bb.md"]
)
async def test_a_file_name_the_database_cannot_keep_or_that_misleads_is_refused_on_file(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, tasks: RecordedTasks, name: str
) -> None:
    _, editor = await editor_of_acme(app, db, client, None)
    base = await new_base(client, editor)
    # By hand: httpx would write the NUL as %00.
    form = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="'
        + name.encode()
        + b'"\r\nContent-Type: text/markdown\r\n\r\n# Hello\r\n--b--\r\n'
    )
    refused = await client.post(
        f"{BASES}/{base}/documents",
        content=form,
        headers={**editor.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["file"]
    assert (await detail(client, editor, base))["documents"] == 0
    assert tasks.sent == []
    longest = "é" * 252 + ".md"  # characters, not bytes
    kept = await upload(client, editor, base, (longest, b"# Hello", "text/markdown"))
    assert kept.status_code == 202, kept.text
    assert kept.json()["filename"] == longest


async def test_spaces_around_a_file_name_are_dropped_and_a_name_needs_a_stem(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, tasks: RecordedTasks
) -> None:
    _, editor = await editor_of_acme(app, db, client, None)
    base = await new_base(client, editor)
    for sent in ("   .md", ".md", "docs/  .txt "):
        refused = await upload(client, editor, base, (sent, b"# Hello", "text/markdown"))
        assert refused.status_code == 422, refused.text
        assert [(e["field"], e["type"]) for e in refused.json()["errors"]] == [("file", "no_name")]
    assert tasks.sent == []
    kept = await upload(client, editor, base, (" guide.md ", b"# Hello", "text/markdown"))
    assert kept.status_code == 202, kept.text
    assert (kept.json()["filename"], kept.json()["content_type"]) == ("guide.md", "text/markdown")
    assert [f["filename"] for f in (await detail(client, editor, base))["files"]] == ["guide.md"]


async def test_bad_requests_get_clear_problems(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    _, editor = await editor_of_acme(app, db, client, None)
    base = await new_base(client, editor)
    no_file = await client.post(f"{BASES}/{base}/documents", headers=editor.headers)
    assert no_file.status_code == 422
    assert [e["field"] for e in no_file.json()["errors"]] == ["file"]
    nameless = await client.post(BASES, json={"name": ""}, headers=editor.headers)
    assert nameless.status_code == 422
    assert [e["field"] for e in nameless.json()["errors"]] == ["name"]
    unknown = await client.get(
        f"{BASES}/00000000-0000-0000-0000-000000000000", headers=editor.headers
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "knowledge_base_not_found")
    no_doc = await client.delete(
        f"{BASES}/{base}/documents/00000000-0000-0000-0000-000000000000", headers=editor.headers
    )
    assert (no_doc.status_code, no_doc.json()["code"]) == (404, "document_not_found")


async def test_viewers_and_other_tenants_see_nothing(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await new_base(client, editor)
    viewer = await login(app, db, await make_member(db, tenant, Role.viewer))
    refused = await client.get(BASES, headers=viewer.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")

    other = await make_tenant(db, "other")
    stranger = await login(app, db, await make_member(db, other, Role.owner))
    theirs = f"/api/v1/tenants/other/knowledge-bases/{base}"
    assert (await client.get(theirs, headers=stranger.headers)).status_code == 404
    assert (await client.delete(theirs, headers=stranger.headers)).status_code == 404
    put = await client.post(f"{theirs}/documents", files={"file": GUIDE}, headers=stranger.headers)
    assert put.status_code == 404
    listed = await client.get("/api/v1/tenants/other/knowledge-bases", headers=stranger.headers)
    assert listed.json() == []
    assert (await detail(client, editor, base))["documents"] == 0
