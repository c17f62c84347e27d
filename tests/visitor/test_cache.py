"""The config cache when the database is slow, gone or refusing: the last good config."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import migrate
from kithost.app import create_app
from kithost.db import create_engine, create_sessionmaker, session_scope
from kithost.kit.tokens import random_token
from kithost.settings import Settings
from kithost.widgets.config import WidgetConfig
from kithost.worker.enqueue import PendingTasks
from tests.conftest import config_cache, create_pg_database, drop_pg_database, make_settings
from tests.visitor.helpers import ORIGIN, Clock, assert_refused, config_url, make_widget

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"


def use_database(app: FastAPI, url: str) -> None:
    """From now on the app's sessions go to ``url``."""
    app.state.sessionmaker = create_sessionmaker(create_engine(url), PendingTasks(app.state.celery))


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A database URL whose server accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"postgresql+psycopg://postgres@127.0.0.1:{sock.getsockname()[1]}/silent"


@pytest.fixture
def doomed_database(tmp_path: Path, task_queue: str) -> Iterator[Settings]:
    """Settings for a PostgreSQL database of this test's own, which it may drop."""
    url = create_pg_database()
    settings = make_settings(tmp_path, url, task_queue)
    migrate.upgrade(settings)
    yield settings
    drop_pg_database(url)


@pytest.fixture
def doomed_app(doomed_database: Settings) -> FastAPI:
    """The app on that database (made before the test runs, so that ``caplog`` sees its logs)."""
    return create_app(doomed_database)


async def test_the_last_good_config_is_served_while_the_database_is_gone(
    doomed_app: FastAPI, doomed_database: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = doomed_app
    async with session_scope(app.state.sessionmaker) as db:
        widget = await make_widget(db, config=WidgetConfig())
    clock = Clock()
    app.state.add(config_cache(app, clock=clock))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        good = await client.get(config_url(widget), headers={"Origin": ORIGIN})
        assert good.status_code == 200
        assert doomed_database.database_url is not None
        drop_pg_database(doomed_database.database_url)  # WITH (FORCE): connections are cut
        clock.now += 60
        with caplog.at_level(logging.WARNING):
            stale = await client.get(config_url(widget), headers={"Origin": ORIGIN})
        assert (stale.status_code, stale.content) == (200, good.content)
        assert any("visitor_config_stale" in r.getMessage() for r in caplog.records)
        unknown = await client.get(config_url(random_token("pk_")), headers={"Origin": ORIGIN})
        assert unknown.status_code == 503
        assert unknown.json()["code"] == "config_unavailable"
    await app.state.engine.dispose()


async def test_a_silent_database_delays_visitors_by_the_wait_at_most(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession, silent_server: str
) -> None:
    clock = Clock()
    app.state.add(config_cache(app, clock=clock, wait=0.2))
    widget = await make_widget(db, config=WidgetConfig())
    good = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    use_database(app, silent_server)
    clock.now += 60
    started = asyncio.get_running_loop().time()
    first = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    second = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    elapsed = asyncio.get_running_loop().time() - started
    assert first.content == second.content == good.content
    assert 0.2 <= elapsed < 1.0  # the first waited 0.2 s, the second not at all


async def test_the_cache_keeps_the_most_recently_used_widgets(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    app.state.add(config_cache(app, max_widgets=2, clock=Clock()))
    first, second, third = [await make_widget(db, config=WidgetConfig()) for _ in range(3)]
    for widget in (first, second, first, third):  # second is now the least recently used
        response = await client.get(config_url(widget), headers={"Origin": ORIGIN})
        assert response.status_code == 200
    use_database(app, UNREACHABLE)
    for widget in (first, third):
        response = await client.get(config_url(widget), headers={"Origin": ORIGIN})
        assert response.status_code == 200
    evicted = await client.get(config_url(second), headers={"Origin": ORIGIN})
    assert evicted.status_code == 503


async def test_unknown_keys_are_remembered_too(app: FastAPI, client: httpx2.AsyncClient) -> None:
    app.state.add(config_cache(app, clock=Clock()))
    unknown = random_token("pk_")
    first = await client.get(config_url(unknown), headers={"Origin": ORIGIN})
    assert_refused(first, 404, "widget_not_found")
    use_database(app, UNREACHABLE)
    again = await client.get(config_url(unknown), headers={"Origin": ORIGIN})
    assert_refused(again, 404, "widget_not_found")


async def test_unknown_keys_never_push_out_the_widgets_shown(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    """Anyone may ask for any number of random keys: they are remembered apart, so the
    widgets visitors see stay in memory (and are served while the database is down)."""
    app.state.add(config_cache(app, max_widgets=2, clock=Clock()))
    shown = [await make_widget(db, config=WidgetConfig()) for _ in range(2)]
    for widget in shown:
        assert (await client.get(config_url(widget), headers={"Origin": ORIGIN})).is_success
    for _ in range(5):
        unknown = await client.get(config_url(random_token("pk_")), headers={"Origin": ORIGIN})
        assert_refused(unknown, 404, "widget_not_found")
    use_database(app, UNREACHABLE)
    for widget in shown:
        response = await client.get(config_url(widget), headers={"Origin": ORIGIN})
        assert response.status_code == 200, response.text


async def test_a_query_the_database_refuses_is_not_an_outage(
    tmp_path: Path, task_queue: str
) -> None:
    """Only the database being unreachable (``errors.DATABASE_DOWN``) is an outage, served
    stale or 503 ``config_unavailable``; a query it refuses (bad input, a bug; here: no
    tables yet) is a 500 to see, as on every other route."""
    url = create_pg_database()  # not migrated
    app = create_app(make_settings(tmp_path, url, task_queue))
    try:
        transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get(config_url(random_token("pk_")), headers={"Origin": ORIGIN})
        assert (response.status_code, response.json()["code"]) == (500, "internal_error")
    finally:
        await app.state.engine.dispose()
        drop_pg_database(url)
