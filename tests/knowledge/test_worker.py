"""Knowledge base documents through a real ``kithost worker`` process: uploaded over the
API, handed to (fake) OpenAI by the worker, shown ready; a deleted base leaves OpenAI.
The worker reads committed rows, so this test commits, in a tenant deleted afterwards."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import delete

from kithost.app import create_app
from kithost.auth.scopes import Scope
from kithost.db import session_scope
from kithost.models import Tenant
from kithost.settings import Settings
from tests.conftest import REDIS_URL, operator_sessions
from tests.factories import bare_tenant, client_token
from tests.fakes.openai_server import FakeOpenAI
from tests.knowledge.helpers import GUIDE
from tests.workers import TIMEOUT, start_worker, stop_worker

pytestmark = pytest.mark.worker


@pytest.fixture
def worker_settings(
    settings: Settings, fake_openai: FakeOpenAI, tmp_path: Path
) -> Iterator[Settings]:
    own = settings.model_copy(
        update={
            "task_queue": f"{settings.task_queue}-knowledge-{secrets.token_hex(3)}",
            "data_dir": tmp_path,
            "openai_base_url": fake_openai.base_url,
        }
    )
    process = start_worker(
        own,
        KITHOST_DATABASE_URL=own.database,
        KITHOST_OPENAI_BASE_URL=fake_openai.base_url,
        KITHOST_OPENAI_API_KEY=fake_openai.api_key,
    )
    yield own
    stop_worker(process)
    redis.Redis.from_url(REDIS_URL).delete(own.task_queue)


@pytest.fixture
async def api(worker_settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(worker_settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield app, client
    async with session_scope(operator_sessions(app)) as session:
        await session.execute(delete(Tenant).where(Tenant.slug.like("kb-worker-%")))
    await app.state.engine.dispose()


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(TIMEOUT * 10):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {TIMEOUT} s")


async def test_a_worker_indexes_an_upload_and_removes_a_deleted_base(
    api: tuple[FastAPI, httpx.AsyncClient], fake_openai: FakeOpenAI
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
