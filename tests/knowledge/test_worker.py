"""Knowledge base documents through a real ``kithost worker`` process: uploaded over the
API, handed to (fake) OpenAI by the worker, shown ready; a deleted base leaves OpenAI.
The worker reads committed rows, so this test commits, in a tenant deleted afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI

from kithost.auth.scopes import Scope
from kithost.db import session_scope
from kithost.settings import Settings
from tests.conftest import operator_sessions
from tests.factories import bare_tenant, client_token
from tests.fakes.openai_server import FakeOpenAI
from tests.knowledge.helpers import GUIDE
from tests.workers import committing_api, own_queue, until, worker_running

pytestmark = pytest.mark.worker


@pytest.fixture
def worker_settings(
    settings: Settings, fake_openai: FakeOpenAI, tmp_path: Path
) -> Iterator[Settings]:
    own = own_queue(settings, "knowledge", tmp_path, openai_base_url=fake_openai.base_url)
    with worker_running(
        own,
        KITHOST_OPENAI_BASE_URL=fake_openai.base_url,
        KITHOST_OPENAI_API_KEY=fake_openai.api_key,
    ):
        yield own


@pytest.fixture
async def api(worker_settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx2.AsyncClient]]:
    async with committing_api(worker_settings, "kb-worker") as api:
        yield api


async def test_a_worker_indexes_an_upload_and_removes_a_deleted_base(
    api: tuple[FastAPI, httpx2.AsyncClient], fake_openai: FakeOpenAI
) -> None:
    app, client = api
    async with session_scope(operator_sessions(app)) as session:
        tenant = await bare_tenant(session, "kb-worker")
        slug = tenant.slug
        # An API client, not a user: the tenant's deletion takes everything it made with it.
        editor = await client_token(
            app, session, tenant, [Scope.knowledge_write, Scope.knowledge_read]
        )
    bases = f"/api/v1/tenants/{slug}/knowledge-bases"
    created = await client.post(bases, json={"name": "Help"}, headers=editor.headers)
    base = created.json()["id"]
    uploaded = await client.post(
        f"{bases}/{base}/documents", files={"file": GUIDE}, headers=editor.headers
    )
    assert uploaded.status_code == 202, uploaded.text

    async def ready() -> bool:
        shown = (await client.get(f"{bases}/{base}", headers=editor.headers)).json()
        return [f["status"] for f in shown["files"]] == ["ready"]

    await until(ready)
    assert [f["content"] for f in fake_openai.vector_stores.files.values()] == [GUIDE[1]]

    assert (await client.delete(f"{bases}/{base}", headers=editor.headers)).status_code == 204

    async def removed() -> bool:
        return not fake_openai.vector_stores.stores and not fake_openai.vector_stores.files

    await until(removed)
