"""A knowledge base whose vector store OpenAI no longer holds (deleted in OpenAI's dashboard,
by a project's cleanup, by an expiry policy). The next upload puts its document in a new
store, and the documents the lost one held fail, saying to upload them again (their bytes
are gone); meanwhile the answers searching it end with a clear error, and the tenant is
told which base is missing (``server.response.failed``). Answering changes nothing at
OpenAI."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
from chatkit.types import ErrorEvent, ProgressUpdateEvent
from fastapi import FastAPI
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.facts import FactBuffer
from kithost.auth.principals import CLI
from kithost.kit.origins import normalize_pattern
from kithost.knowledge import ingest
from kithost.knowledge.tasks import ingest as ingest_task
from kithost.models import (
    AllowedOrigin,
    DocumentStatus,
    KnowledgeBase,
    KnowledgeDocument,
    Tenant,
    Widget,
)
from kithost.widgets.config import WidgetConfig
from kithost.widgets.service import create_widget
from tests.chat.helpers import INGEST, deltas, visitor
from tests.factories import Credentials
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI
from tests.knowledge.helpers import BASES, GUIDE, editor_of_acme, new_base, run_ingest, upload
from tests.visitor.helpers import ORIGIN, publish
from tests.workers import RecordedTasks

FAQ = ("faq.txt", b"Q: Do you ship abroad? A: Yes.", "text/plain")


async def files_of(
    client: httpx2.AsyncClient, editor: Credentials, base: str
) -> list[tuple[str, str, str | None]]:
    """The base's documents as the API shows them: name, status, failure reason."""
    found = await client.get(f"{BASES}/{base}", headers=editor.headers)
    assert found.status_code == 200, found.text
    return [(f["filename"], f["status"], f["failure_reason"]) for f in found.json()["files"]]


async def store_of(db: AsyncSession, base: str) -> str | None:
    found = await db.get(KnowledgeBase, uuid.UUID(base), populate_existing=True)
    assert found is not None
    return found.vector_store_id


async def indexed_base(
    client: httpx2.AsyncClient, app: FastAPI, tasks: RecordedTasks, editor: Credentials
) -> str:
    """A new base of acme's holding ``GUIDE``, indexed."""
    base = await new_base(client, editor)
    assert (await upload(client, editor, base, GUIDE)).status_code == 202
    assert await run_ingest(app, tasks) == ["ready"]
    return base


async def lost_base(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake: FakeOpenAI,
    tasks: RecordedTasks,
    editor: Credentials,
) -> tuple[str, str]:
    """An :func:`indexed_base` whose vector store the tenant then deleted in OpenAI's
    dashboard; the base and the store."""
    base = await indexed_base(client, app, tasks, editor)
    lost = await store_of(db, base)
    assert lost is not None
    await AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url).vector_stores.delete(lost)
    return base, lost


async def test_an_upload_after_the_store_is_lost_goes_into_a_new_one(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base, lost = await lost_base(client, app, db, fake_openai, tasks, editor)
    [guide] = (await client.get(f"{BASES}/{base}", headers=editor.headers)).json()["files"]

    assert (await upload(client, editor, base, FAQ)).status_code == 202
    assert await run_ingest(app, tasks) == ["ready"]

    assert await files_of(client, editor, base) == [
        ("guide.md", "failed", ingest.LOST),
        ("faq.txt", "ready", None),
    ]
    listed = (await client.get(f"{BASES}/{base}", headers=editor.headers)).json()
    assert (listed["documents"], listed["processing"], listed["failed"]) == (2, 0, 1)
    [(store, held)] = fake_openai.vector_stores.stores.items()
    assert await store_of(db, base) == store != lost
    assert held["metadata"] == {"kithost_knowledge_base": base}
    assert [fake_openai.vector_stores.files[f]["filename"] for f in held["file_ids"]] == ["faq.txt"]
    # The lost document's task delivered again (workers acknowledge late) changes nothing.
    tasks.record(ingest_task.name, [str(tenant.id), guide["id"]])
    assert await run_ingest(app, tasks) == ["failed"]
    assert len(fake_openai.vector_stores.stores) == 1


async def test_a_file_openai_lost_is_refused_and_the_store_kept(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    """A 404 for the file (the store is still there) is no lost store: only that document
    fails, as before."""
    _, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await indexed_base(client, app, tasks, editor)
    store = await store_of(db, base)
    faq = (await upload(client, editor, base, FAQ)).json()
    document = await db.get(KnowledgeDocument, uuid.UUID(faq["id"]))
    assert document is not None
    document.file_id = "file-deleted-at-openai"  # an earlier attempt's, deleted since
    await db.flush()

    assert await run_ingest(app, tasks) == ["failed"]

    [guide, refused] = await files_of(client, editor, base)
    assert guide == ("guide.md", "ready", None)
    assert refused[:2] == ("faq.txt", "failed")
    assert str(refused[2]).startswith("OpenAI refused the document: ")
    assert await store_of(db, base) == store
    assert list(fake_openai.vector_stores.stores) == [store]


async def test_a_store_another_task_replaced_already_is_kept(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    """Two documents' tasks both found the store lost: the first made a new one, and its
    document is ready there. The second, replacing the store it found lost, takes the new
    one: the base keeps it, and what it holds stays ready."""
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base, lost = await lost_base(client, app, db, fake_openai, tasks, editor)
    assert (await upload(client, editor, base, FAQ)).status_code == 202
    assert await run_ingest(app, tasks) == ["ready"]  # the first task
    replaced = await store_of(db, base)

    openai = AsyncOpenAI(api_key=fake_openai.api_key, base_url=fake_openai.base_url)
    sessionmaker = app.state.sessionmaker
    kept = await ingest.replace_store(
        sessionmaker, ingest.Upstream(openai), tenant.id, uuid.UUID(base), "Help centre", lost
    )

    assert kept == replaced == await store_of(db, base)
    assert len(fake_openai.vector_stores.stores) == 1
    assert [s for _, s, _ in await files_of(client, editor, base)] == ["failed", "ready"]


async def test_a_document_indexed_in_a_store_lost_meanwhile_is_not_ready(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    """A task indexed its document in the store just before it was lost, and settles it
    after another task replaced the store: the document fails as lost, not ready in a
    store nobody searches."""
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base = await indexed_base(client, app, tasks, editor)
    faq = (await upload(client, editor, base, FAQ)).json()
    db_base = await db.get(KnowledgeBase, uuid.UUID(base))
    assert db_base is not None
    db_base.vector_store_id = "vs_made_after_the_loss"
    await db.flush()

    settled = await ingest.settle(
        app.state.sessionmaker, tenant.id, uuid.UUID(faq["id"]), None, store_id="vs_lost"
    )

    assert settled is DocumentStatus.failed
    assert (await files_of(client, editor, base))[1] == ("faq.txt", "failed", ingest.LOST)


async def searching_widget(db: AsyncSession, tenant: Tenant, base: str, fake: FakeOpenAI) -> Widget:
    """A published widget of ``tenant`` whose agent (on the operator's OpenAI endpoint, the
    fake, with the tenant's key) searches ``base``."""
    widget = await create_widget(db, CLI, tenant, name="Support")
    db.add(
        AllowedOrigin(tenant_id=tenant.id, widget_id=widget.id, origin=normalize_pattern(ORIGIN))
    )
    tool = {"type": "file_search", "id": "help", "label": "Searching…", "knowledge_bases": [base]}
    await publish(db, widget, WidgetConfig.model_validate({"agent": {"tools": [tool]}}))
    return widget


async def failures(app: FastAPI, tasks: RecordedTasks) -> list[Any]:
    """The errors of the ``server.response.failed`` facts reported so far."""
    await app.state.part(FactBuffer).aclose()
    facts = [event for args in tasks.take(INGEST) for event in args[2]]
    return [f["data"]["error"] for f in facts if f["name"] == "server.response.failed"]


async def test_an_answer_searching_a_lost_store_says_so_and_changes_nothing_at_openai(
    client: httpx2.AsyncClient,
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
) -> None:
    tenant, editor = await editor_of_acme(app, db, client, fake_openai.api_key)
    base, lost = await lost_base(client, app, db, fake_openai, tasks, editor)
    alice = await visitor(http, app, db, await searching_widget(db, tenant, base, fake_openai))
    fake_openai.requests.clear()

    events = await alice.send("Are returns free?")

    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert [(e.code, e.message, e.allow_retry) for e in errors] == [
        ("custom", "This chat cannot search its documents right now.", False)
    ]
    assert await failures(app, tasks) == [f"knowledge_base_missing: {base}"]
    assert [(r.method, r.path) for r in fake_openai.requests] == [("POST", "/v1/responses")]
    assert await store_of(db, base) == lost
    assert await files_of(client, editor, base) == [("guide.md", "ready", None)]

    # Once a document is uploaded again, the answers search the new store.
    assert (await upload(client, editor, base, GUIDE)).status_code == 202
    assert await run_ingest(app, tasks) == ["ready"]
    events = await alice.send("Are returns free?")
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
    assert [e.text for e in events if isinstance(e, ProgressUpdateEvent)] == ["Searching…"]
    [search] = fake_openai.vector_stores.searches[-1:]
    assert search["vector_store_ids"] == [await store_of(db, base)]
