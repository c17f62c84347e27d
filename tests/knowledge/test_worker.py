"""Knowledge base documents through a real ``kithost worker`` process: uploaded over the
API, handed to (fake) OpenAI by the worker, shown ready; a deleted base leaves OpenAI, and
so does what the task made for a document or base deleted meanwhile, whatever OpenAI
answers the first time. The worker reads committed rows, so these tests commit, each in a
tenant deleted afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI

from kithost.auth.scopes import Scope
from kithost.db import session_scope
from kithost.settings import Settings
from tests.conftest import operator_sessions
from tests.factories import Credentials, bare_tenant, client_token
from tests.fakes.openai_server import FakeOpenAI, shared_fake
from tests.knowledge.helpers import GUIDE
from tests.workers import committing_api, own_queue, until, worker_running

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def worker_settings(
    settings: Settings, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """One worker for the module's tests (each makes a tenant of its own), on the fake."""
    fake = shared_fake(request.config)
    data_dir = tmp_path_factory.mktemp("knowledge")
    own = own_queue(settings, "knowledge", data_dir, openai_base_url=fake.base_url)
    with worker_running(
        own, KITHOST_OPENAI_BASE_URL=fake.base_url, KITHOST_OPENAI_API_KEY=fake.api_key
    ):
        yield own


@pytest.fixture
async def api(worker_settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx2.AsyncClient]]:
    async with committing_api(worker_settings, "kb-worker") as api:
        yield api


async def uploaded(
    app: FastAPI, client: httpx2.AsyncClient
) -> tuple[str, Credentials, dict[str, Any]]:
    """A tenant's base with ``GUIDE`` uploaded (committed): the base's URL, an editor and the
    document."""
    async with session_scope(operator_sessions(app)) as session:
        tenant = await bare_tenant(session, "kb-worker")
        slug = tenant.slug
        # An API client, not a user: the tenant's deletion takes everything it made with it.
        editor = await client_token(
            app, session, tenant, [Scope.knowledge_write, Scope.knowledge_read]
        )
    bases = f"/api/v1/tenants/{slug}/knowledge-bases"
    created = await client.post(bases, json={"name": "Help"}, headers=editor.headers)
    base = f"{bases}/{created.json()['id']}"
    document = await client.post(f"{base}/documents", files={"file": GUIDE}, headers=editor.headers)
    assert document.status_code == 202, document.text
    return base, editor, document.json()


async def test_a_worker_indexes_an_upload_and_removes_a_deleted_base(
    api: tuple[FastAPI, httpx2.AsyncClient], fake_openai: FakeOpenAI
) -> None:
    app, client = api
    base, editor, _ = await uploaded(app, client)

    async def ready() -> bool:
        shown = (await client.get(base, headers=editor.headers)).json()
        return [f["status"] for f in shown["files"]] == ["ready"]

    await until(ready)
    assert [f["content"] for f in fake_openai.vector_stores.files.values()] == [GUIDE[1]]

    assert (await client.delete(base, headers=editor.headers)).status_code == 204

    async def removed() -> bool:
        return not fake_openai.vector_stores.stores and not fake_openai.vector_stores.files

    await until(removed)


@pytest.mark.parametrize("deleted", ["document", "base"])
async def test_what_the_task_made_for_a_deletion_meanwhile_leaves_openai(
    api: tuple[FastAPI, httpx2.AsyncClient], fake_openai: FakeOpenAI, deleted: str
) -> None:
    """The ingest task has OpenAI make the document's file (or the base's vector store) while
    the document (or its base) is deleted: the task takes what it made back through the
    removal task, which retries when OpenAI fails the first deletion, so nothing is left
    there for nobody."""
    made, prefix = ("/v1/files", "file-") if deleted == "document" else ("/v1/vector_stores", "vs_")
    fake_openai.hold_answer("POST", made)
    fake_openai.fail_next(500, method="DELETE")
    app, client = api
    base, editor, document = await uploaded(app, client)

    async def holding() -> bool:
        return fake_openai.holding.is_set()

    await until(holding)
    deleting = f"{base}/documents/{document['id']}" if deleted == "document" else base
    assert (await client.delete(deleting, headers=editor.headers)).status_code == 204
    fake_openai.release()

    async def taken_back() -> bool:
        stores = fake_openai.vector_stores
        return not (stores.files if deleted == "document" else stores.stores)

    await until(taken_back)
    [taken] = [f"{made}/{made_id}" for made_id in fake_openai.owners if made_id.startswith(prefix)]
    deletions = [r.path for r in fake_openai.requests if r.method == "DELETE"]
    assert deletions.count(taken) == 2, "the first deletion failed, its retry deleted it"
