"""Shared fixtures: real PostgreSQL and SQLite databases, the app, an HTTP client.

Every API test runs twice, on PostgreSQL and on SQLite (the ``database_url`` fixture is
parametrised). Each test runs inside a transaction that is rolled back at the end; the
app's sessions join it with SAVEPOINTs, so their commits are real but never leak.

On PostgreSQL the app acts as it does in production: as :data:`APP_ROLE`, which row-level
security binds (``kithost.rls``). Its sessions switch to that role for each unit of work
(``AppRoleSession``); the test's own (``db``, factories) stay the owner's (a superuser),
seeing every row.
Processes the tests start connect as the app role (``settings.database``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
import uvicorn
from argon2 import PasswordHasher, profiles
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction
from starlette.types import Receive, Scope, Send

from kithost import migrate, rls
from kithost.app import create_app
from kithost.auth import passwords
from kithost.chat import answers
from kithost.db import Sessionmaker, create_engine, create_sessionmaker, session_scope
from kithost.kit.upstream import ModelClients
from kithost.settings import Settings
from kithost.state import AppState
from kithost.visitor.cache import ConfigCache
from kithost.worker.enqueue import PendingTasks
from tests.fakes.openai_server import fake_openai

__all__ = ["fake_openai"]

# argon2 at production cost takes ~170 ms a hash: the suite hashes cheaply in its own process
# (servers it starts as subprocesses keep the real cost). tests/auth/test_login.py checks the
# production parameters and the rehash on sign-in.
passwords._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)

PG_HOST = os.environ.get("KITHOST_TEST_PG_HOST", "127.0.0.1:5432")
PG_ADMIN_URL = f"postgresql://postgres@{PG_HOST}/postgres"
APP_ROLE = "kithost_app"
"""The app's role in the tests' cluster: may log in, no superuser, no BYPASSRLS, owns
nothing (the tables are the ``postgres`` user's, who migrates)."""
REDIS_URL = os.environ.get("KITHOST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("KITHOST_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def create_pg_database() -> str:
    """Create an empty PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"kithost_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@{PG_HOST}/{name}"


def create_app_role() -> None:
    """Create :data:`APP_ROLE` unless it exists (roles are cluster-wide: concurrent runs
    may race to create it, and the loser finds it made)."""
    create = f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,))
        if exists.fetchone() is None:
            with contextlib.suppress(
                psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation
            ):
                conn.execute(create)


def as_app_role(url: str) -> str:
    """``url`` (PostgreSQL, the owner's) for the app's role."""
    return make_url(url).set(username=APP_ROLE).render_as_string(hide_password=False)


class AppRoleSession(Session):
    """A session acting as :data:`APP_ROLE` for each unit of work on PostgreSQL.

    It joins the test's transaction, so what it sets would outlive its SAVEPOINT: it sets
    the role as it begins and, committing, resets the role and the tenant it was scoped to
    (a rolled-back SAVEPOINT undoes both anyway), so the next unit of work starts with
    nothing, as a new transaction does in production."""


@event.listens_for(AppRoleSession, "after_begin")
def _act_as_app_role(session: Session, _t: SessionTransaction, connection: Connection) -> None:
    """The role, and the session's own scope only: not one the test's sessions set in the
    shared transaction."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET ROLE {APP_ROLE}")
        connection.execute(rls.SET_SCOPE, rls.scope_values(session.info))


@event.listens_for(AppRoleSession, "before_commit")
def _leave_app_role(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("RESET ROLE")
        session.connection().execute(rls.SET_SCOPE, rls.scope_values({}))


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def tenant_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """No check of deleted tenants while answers are open (``chat.answers``): the app's
    units of work share the test's one connection, which serves one at a time, and the
    check, running beside a request's, would change the role and tenant that one runs as.
    Tests whose app has connections of its own (``tests/chat/test_races.py``) override
    this and check as production does."""
    monkeypatch.setattr(answers, "CHECK_SECONDS", 3600.0)


@pytest.fixture(scope="session")
def task_queue() -> str:
    """A queue name of this run's own, so parallel runs on one broker never meet."""
    return f"kithost-test-{secrets.token_hex(4)}"


def make_settings(
    data_dir: Path, database_url: str, task_queue: str, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "broker_url": REDIS_URL,
        "task_queue": task_queue,
        "secret_key": "test-secret-key",
        "log_json": False,
        # A loaded machine may take over the second a visitor waits for a widget's config.
        "config_wait_seconds": 30,
    }
    return Settings.model_validate({**values, **overrides})


@contextlib.contextmanager
def database_at(revision: str, dialect: str, data_dir: Path) -> Iterator[Settings]:
    """Settings of a new database (``dialect``: postgresql or sqlite) migrated up to
    ``revision``, dropped after: a data migration's test fills it, then upgrades."""
    if dialect == "postgresql":
        url = create_pg_database()
        settings = Settings(data_dir=data_dir, database_url=url)
    else:
        settings = Settings(data_dir=data_dir, database_url=f"sqlite+aiosqlite:///{data_dir}/m.db")
    migrate.upgrade(settings, revision)
    try:
        yield settings
    finally:
        if dialect == "postgresql":
            drop_pg_database(url)


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    create_app_role()
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'kithost.db'}"


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(scope="session")
def settings(
    database_url: str, task_queue: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """On PostgreSQL the app's URL is the app role's and migrations run as the owner,
    granting the app role its privileges (as ``kithost migrate`` does in production)."""
    url, overrides = database_url, {}
    if database_url.startswith("postgresql"):
        url, overrides = as_app_role(database_url), {"migration_database_url": database_url}
    settings = make_settings(tmp_path_factory.mktemp("data"), url, task_queue, **overrides)
    migrate.upgrade(settings)
    return settings


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The owner's engine: the test's transaction; the app's sessions switch role in it."""
    engine = create_engine(settings.migration_database)
    yield engine
    await engine.dispose()


def concurrent_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on connections of their own (outside the test's transaction), for two
    transactions at once; the test is skipped on SQLite, which runs one writer at a time.
    What they commit is the test's to delete."""
    if engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def cli_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings of a migrated database of the module's own, for runs of the ``kithost``
    command (``tests/cli.py``): processes of their own, so not the test's transaction."""
    data_dir = tmp_path_factory.mktemp("cli")
    if request.param == "postgresql":
        create_app_role()
        url = create_pg_database()
        settings = Settings(
            data_dir=data_dir, database_url=as_app_role(url), migration_database_url=url
        )
        migrate.upgrade(settings)
        yield settings
        drop_pg_database(url)
    else:
        settings = Settings(data_dir=data_dir)
        migrate.upgrade(settings)
        yield settings


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The test's transaction; the apps made on it (:func:`create_test_app`) let go of
    their model connections with it (an app under test does not run its lifespan)."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        await transaction.rollback()
    while _MODEL_CLIENTS:
        await _MODEL_CLIENTS.pop().aclose()


_MODEL_CLIENTS: list[ModelClients] = []
"""Of the apps made on the current test's connection."""


def create_test_app(
    settings: Settings, connection: AsyncConnection, **overrides: object
) -> FastAPI:
    """The app as ``create_app`` builds it from ``settings`` changed by ``overrides``, its
    sessions in the test's transaction."""
    app = create_app(settings.model_copy(update=overrides))
    # Reconfigured, not replaced: the app's parts (the chat runtime, …) hold this one.
    app_sessions: Sessionmaker = app.state.sessionmaker
    app_sessions.configure(bind=connection, sync_session_class=AppRoleSession)
    _MODEL_CLIENTS.append(state_of(app).part(ModelClients))
    return app


def config_cache(app: FastAPI, **overrides: Any) -> ConfigCache:
    """A visitor config cache for ``app`` as its settings make it, changed by ``overrides``."""
    settings = state_of(app).settings
    defaults = {
        "chatkit_script": settings.chatkit_script_url,
        "wait": settings.config_wait_seconds,
    }
    return ConfigCache(**{**defaults, **overrides})


def state_of(app: FastAPI) -> AppState:
    """``app.state``, typed."""
    assert isinstance(app.state, AppState)
    return app.state


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection) -> FastAPI:
    return create_test_app(settings, connection)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def operator_sessions(app: FastAPI) -> Sessionmaker:
    """Sessions on the app's database for arranging and checking data of any tenant, as an
    operator's command has them (``rls.Bypass.platform``); in the test's transaction, as
    the tables' owner, whom row-level security does not bind anyway."""
    app_sessions: Sessionmaker = app.state.sessionmaker
    sessionmaker = create_sessionmaker(
        app_sessions.kw["bind"], PendingTasks(app.state.celery), app_sessions.kw["info"]
    )  # the same key ring
    return rls.bypassing_sessions(sessionmaker, rls.Bypass.platform)


@pytest.fixture
async def db(app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A unit of work in the test's transaction, for arranging data and checking results:
    the owner's, which row-level security does not bind."""
    async with session_scope(operator_sessions(app)) as session:
        yield session


class LoopbackServer:
    """uvicorn in the test session's event loop, serving whichever app ``app`` is."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(
            self._dispatch, lifespan="off", log_config=None, log_level="warning", interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no app is being served"
        await self.app(scope, receive, send)

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self._socket]))
        # uvicorn offers only this flag to wait for.
        while not self.server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


@pytest.fixture(scope="session")
async def loopback() -> AsyncIterator[LoopbackServer]:
    server = LoopbackServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(app: FastAPI, loopback: LoopbackServer) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client of the test's app, over real sockets."""
    loopback.app = app
    async with httpx2.AsyncClient(base_url=loopback.url, timeout=30) as client:
        yield client
    loopback.app = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark by folder: ``browser`` for tests/browser/, ``slow`` for tests/deploy/ (modules
    mark themselves ``worker`` or ``slow`` otherwise); ``make test-fast`` leaves them out."""
    for item in items:
        parts = item.path.parts
        if "browser" in parts:
            item.add_marker(pytest.mark.browser)
        if "deploy" in parts:
            item.add_marker(pytest.mark.slow)
