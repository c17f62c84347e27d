"""Real ``kithost serve`` processes: every one serves a publish within the cache's bound."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kithost import migrate
from kithost.db import create_engine, create_sessionmaker, session_scope
from kithost.embed.cache import REVALIDATE_SECONDS
from kithost.models import Widget
from kithost.settings import Settings
from kithost.widgets.config import Launcher, WidgetConfig
from kithost.worker.app import create_celery
from tests.conftest import create_pg_database, drop_pg_database, make_settings
from tests.embed.helpers import ORIGIN, config_url, make_widget, publish
from tests.test_run import free_port

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


class Server:
    """``kithost serve`` in a subprocess, configured like ``settings``."""

    def __init__(self, settings: Settings, log_path: Path, **env_vars: str) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            **env_vars,
            "KITHOST_DATA_DIR": str(settings.data_dir),
            "KITHOST_DATABASE_URL": settings.database,
            "KITHOST_SECRET_KEY": "test-secret-key",
            "KITHOST_PORT": self.url.rsplit(":", 1)[1],
            "KITHOST_PUBLIC_URL": self.url,
        }
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kithost", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if (await client.get(f"{self.url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"kithost serve did not start:\n{self.log_path.read_text()}")

    async def config(self, client: httpx.AsyncClient, widget: Widget) -> httpx.Response:
        response = await client.get(self.url + config_url(widget), headers={"Origin": ORIGIN})
        assert response.status_code == 200, response.text
        return response

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def test_every_process_serves_a_publish_within_the_bound(
    shared_database: Settings, tmp_path: Path
) -> None:
    engine = create_engine(shared_database.database)
    sessionmaker = create_sessionmaker(engine, create_celery(shared_database))
    async with session_scope(sessionmaker) as db:
        widget = await make_widget(db, config=WidgetConfig())
    servers = [Server(shared_database, tmp_path / f"serve-{i}.log") for i in range(2)]
    try:
        async with httpx.AsyncClient() as client:
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
        async with httpx.AsyncClient() as client:
            await server.wait_ready(client)
            await client.get(f"{server.url}/healthz", headers={"X-Request-ID": "req-logged"})
    finally:
        server.stop()
    lines = server.log_path.read_text().splitlines()
    assert any("GET /healthz" in line and "req-logged" in line for line in lines)
