"""Real ``kithost serve`` processes: every one serves a publish within the cache's bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from kithost import migrate
from kithost.db import create_engine, create_sessionmaker, session_scope
from kithost.settings import Settings
from kithost.visitor.cache import REVALIDATE_SECONDS
from kithost.widgets.config import Launcher, WidgetConfig
from kithost.worker.app import create_celery
from kithost.worker.enqueue import PendingTasks
from tests.conftest import create_pg_database, drop_pg_database, make_settings
from tests.visitor.helpers import Server, make_widget, publish

SLACK_SECONDS = 1.0
"""For the revalidation query, polling, and a busy machine."""


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_database(
    request: pytest.FixtureRequest, tmp_path: Path, task_queue: str
) -> Iterator[Settings]:
    """A database of this test's own, migrated, that several processes open."""
    url = create_pg_database() if request.param == "postgresql" else None
    sqlite = f"sqlite+aiosqlite:///{tmp_path}/kithost.db"
    settings = make_settings(tmp_path, url or sqlite, task_queue)
    migrate.upgrade(settings)
    yield settings
    if url is not None:
        drop_pg_database(url)


async def test_every_process_serves_a_publish_within_the_bound(
    shared_database: Settings, tmp_path: Path
) -> None:
    engine = create_engine(shared_database.database)
    sessionmaker = create_sessionmaker(engine, PendingTasks(create_celery(shared_database)))
    async with session_scope(sessionmaker) as db:
        widget = await make_widget(db, config=WidgetConfig())
    servers = [Server(shared_database, tmp_path / f"serve-{i}.log") for i in range(2)]
    try:
        async with httpx2.AsyncClient() as client:
            for server in servers:
                await server.wait_ready(client)
            warm = [await server.config(client, widget) for server in servers]
            assert [r.json()["version"] for r in warm] == [1, 1]
            assert warm[0].headers["etag"] == warm[1].headers["etag"]

            async with session_scope(sessionmaker) as db:
                db.add(widget)
                await publish(db, widget, WidgetConfig(launcher=Launcher(label="Version two")))
            published = time.monotonic()

            for server in servers:
                while (await server.config(client, widget)).json()["version"] != 2:
                    assert time.monotonic() - published < REVALIDATE_SECONDS + SLACK_SECONDS
                    await asyncio.sleep(0.05)
    finally:
        for server in servers:
            server.stop()
        await engine.dispose()
    for server in servers:
        assert "uvicorn.access" not in server.log_path.read_text()  # off unless asked for


async def test_serve_logs_each_request_when_asked(tmp_path: Path, task_queue: str) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/kithost.db", task_queue)
    server = Server(settings, tmp_path / "serve.log", KITHOST_ACCESS_LOG="true")
    try:
        async with httpx2.AsyncClient() as client:
            await server.wait_ready(client)
            await client.get(f"{server.url}/healthz", headers={"X-Request-ID": "req-logged"})
    finally:
        server.stop()
    lines = server.log_path.read_text().splitlines()
    assert any("GET /healthz" in line and "req-logged" in line for line in lines)
