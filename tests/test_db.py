from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.db import create_engine, create_sessionmaker, only_reads, session_scope
from kithost.models import AuditLogEntry, Tenant, User
from kithost.tenants.service import create_tenant
from kithost.users.service import create_user
from kithost.widgets.service import create_widget, publish_draft
from tests.conftest import PG_ADMIN_URL, operator_sessions


class _NothingHeldBack:
    async def committed(self, session: AsyncSession) -> None:
        pass

    def rolled_back(self, session: AsyncSession) -> None:
        pass


async def test_a_unit_that_only_reads_does_not_wait_for_the_sqlite_write_lock(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'kithost.db'}")
    sessionmaker = create_sessionmaker(engine, _NothingHeldBack())
    statements: list[str] = []

    def executed(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", executed)
    count = text("SELECT count(*) FROM t")
    try:
        async with engine.begin() as setup:
            await setup.execute(text("CREATE TABLE t (x INTEGER)"))
            await setup.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as writer:
            await writer.execute(text("INSERT INTO t VALUES (2)"))  # holds the write lock
            statements.clear()
            async with session_scope(sessionmaker) as session:
                await only_reads(session)
                read = await asyncio.wait_for(session.scalar(count), 5)
            assert read == 1  # what is committed
            assert statements == [str(count)]
            await writer.rollback()
        statements.clear()
        async with session_scope(sessionmaker) as session:
            await session.scalar(count)
        assert statements == ["BEGIN IMMEDIATE", str(count)]  # every other unit takes the lock
    finally:
        await engine.dispose()


async def test_a_unit_that_began_nothing_ends_without_the_sqlite_drivers_commit(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'kithost.db'}", pool_size=1)
    sessionmaker = create_sessionmaker(engine, _NothingHeldBack())
    ended: list[str] = []
    try:
        async with engine.begin() as setup:
            await setup.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        for name in ("commit", "rollback"):
            end = getattr(driver, name)

            async def counted(end: Any = end, name: str = name) -> None:
                ended.append(name)
                await end()

            setattr(driver, name, counted)
        async with session_scope(sessionmaker) as session:
            await only_reads(session)
            await session.scalar(text("SELECT count(*) FROM t"))
        assert ended == []  # no transaction began: no hand-off to end one
        async with session_scope(sessionmaker) as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
        assert ended == ["commit"]

        async def failing_unit() -> None:
            async with session_scope(sessionmaker) as session:
                await session.execute(text("INSERT INTO t VALUES (2)"))
                raise RuntimeError

        with pytest.raises(RuntimeError):
            await failing_unit()
        assert ended == ["commit", "rollback"]
        async with session_scope(sessionmaker) as session:
            assert await session.scalar(text("SELECT sum(x) FROM t")) == 1
    finally:
        await engine.dispose()


async def test_a_connection_the_database_closed_is_not_handed_out(postgresql_url: str) -> None:
    engine = create_engine(postgresql_url, pool_size=1, max_overflow=0)
    backend = text("SELECT pg_backend_pid()")
    try:
        async with engine.connect() as connection:
            pid = await connection.scalar(backend)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:  # a restart, for one
            stop = "SELECT pg_terminate_backend(%s, 5000)"  # returns once it has exited
            assert admin.execute(stop, (pid,)).fetchone() == (True,)
        async with engine.connect() as connection:  # the pooled one is closed: a new one
            assert await connection.scalar(backend) != pid
    finally:
        await engine.dispose()


async def _count(app: FastAPI, model: type[Tenant] | type[User]) -> int:
    async with session_scope(app.state.sessionmaker) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_unit_of_work_commits_on_success(app: FastAPI) -> None:
    async with session_scope(app.state.sessionmaker) as session:
        owner = (await create_user(session, CLI, "Ada@Example.com")).user
        await create_tenant(session, CLI, slug="acme", name="Acme", owner=owner)
    async with session_scope(operator_sessions(app)) as session:  # audit entries: any tenant's
        tenant = (await session.execute(select(Tenant))).scalar_one()
        actions = (await session.execute(select(AuditLogEntry.action))).scalars().all()
    assert tenant.slug == "acme"
    assert sorted(actions) == ["tenant.created", "user.created"]


async def test_unit_of_work_rolls_back_on_error(app: FastAPI) -> None:
    async def write_then_fail() -> None:
        async with session_scope(app.state.sessionmaker) as session:
            await create_user(session, CLI, "grace@example.com")
            raise RuntimeError("fail after the write")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert await _count(app, User) == 0


async def test_timestamps_round_trip_as_aware_utc(app: FastAPI) -> None:
    moment = datetime(2026, 11, 25, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    async with session_scope(app.state.sessionmaker) as session:
        user = (await create_user(session, CLI, "t@example.com")).user
        user.last_login_at = moment
    async with session_scope(app.state.sessionmaker) as session:
        stored = (await session.execute(select(User))).scalar_one()
    assert stored.last_login_at == moment
    assert stored.last_login_at is not None
    assert stored.last_login_at.tzinfo == UTC
    assert stored.created_at.tzinfo == UTC


async def test_naive_timestamps_are_refused(app: FastAPI) -> None:
    async with session_scope(app.state.sessionmaker) as session:
        user = (await create_user(session, CLI, "n@example.com")).user
        user.last_login_at = datetime(2026, 1, 1)
        with pytest.raises(StatementError, match="naive datetime"):
            await session.flush()
        await session.rollback()


async def test_a_request_commits_before_its_response_is_sent(
    app: FastAPI, http: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a real socket: the response waits for the request's commit (``DbSession``)."""
    async with session_scope(app.state.sessionmaker) as session:
        tenant = await create_tenant(
            session,
            CLI,
            slug="acme",
            name="Acme",
            owner=(await create_user(session, CLI, "a@b.c")).user,
        )
        widget = await create_widget(
            session, CLI, tenant, name="chat", origins=["https://shop.example.com"]
        )
        await publish_draft(session, CLI, widget, published_by=None)
    gate = asyncio.Event()
    commit = AsyncSession.commit

    async def gated_commit(self: AsyncSession) -> None:
        await gate.wait()
        await commit(self)

    monkeypatch.setattr(AsyncSession, "commit", gated_commit)
    request = asyncio.create_task(
        http.post(
            f"/v1/embed/{widget.public_key}/session",
            json={"device_id": "anon_" + "d" * 24},
            headers={"Origin": "https://shop.example.com"},
        )
    )
    try:
        await asyncio.sleep(0.5)
        answered_early = request.done()
    finally:
        gate.set()
    assert (await request).status_code == 200
    assert not answered_early  # answered only once committed
