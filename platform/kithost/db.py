"""Async database engines and the unit of work.

Services never commit: :func:`session_scope` (and the request dependency
:func:`get_session` built on it) commits when the block succeeds, rolls back when it
raises, and only after a commit hands over the work the unit of work held back
(:class:`AfterCommit`: the Celery tasks queued with :func:`kithost.worker.enqueue.enqueue`).
"""

from __future__ import annotations

import select
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Protocol, cast

from fastapi import Depends, Request
from sqlalchemy import CursorResult, Result, event, func, text
from sqlalchemy import select as select_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from kithost import rls

Sessionmaker = async_sessionmaker[AsyncSession]
AFTER_COMMIT = "kithost.after_commit"
ONLY_READS = "kithost_only_reads"
"""The execution option :func:`only_reads` sets."""


class AfterCommit(Protocol):
    """What units of work hold back until they end (``worker.enqueue.PendingTasks``)."""

    async def committed(self, session: AsyncSession) -> None:
        """``session`` committed: hand over what it held."""

    def rolled_back(self, session: AsyncSession) -> None:
        """``session`` rolled back: drop what it held."""


def create_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> AsyncEngine:
    """An async engine; on SQLite, with real transactions, foreign keys and WAL.
    ``pool_size`` + ``max_overflow``: the most connections the process opens to a server
    database, each checked before use (:func:`_discard_closed_by_server`)."""
    if make_url(url).get_backend_name() != "sqlite":
        engine = _create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        event.listen(engine.sync_engine, "checkout", _discard_closed_by_server)
        return engine
    engine = _create_async_engine(url, connect_args={"timeout": 30})
    _make_sqlite_transactional(engine)
    return engine


def _discard_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no pooled connection the database has closed (a restart, a failover, an
    idle timeout): the pool then opens a new one (SQLAlchemy's ``DisconnectionError``).

    An idle PostgreSQL connection has nothing to read until it sends a query; once the
    server has closed it, its socket reads the end (or the server's last error). Asking the
    socket costs a system call where SQLAlchemy's ``pool_pre_ping`` costs a round trip to
    the server before every unit of work (measured: a reply's read, 1.87 → 1.63 ms).
    """
    driver = dbapi_connection.driver_connection
    if driver.closed:
        raise DisconnectionError("the connection is closed")
    poll = select.poll()
    poll.register(driver.fileno(), select.POLLIN | select.POLLPRI)
    if poll.poll(0):
        raise DisconnectionError("the database closed the connection")


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    # The sqlite3 driver opens transactions lazily and never for SAVEPOINTs or DDL;
    # take over BEGIN ourselves (SQLAlchemy's documented recipe). IMMEDIATE takes the write
    # lock up front: a deferred transaction that reads, then writes, fails at once with
    # "database is locked" when another wrote meanwhile; this one waits its turn instead.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL with synchronous=NORMAL: no corruption on a crash, no fsync on every commit.
        pragmas = (
            "foreign_keys=ON",
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "busy_timeout=30000",
        )
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") != "AUTOCOMMIT" and not options.get(ONLY_READS):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    # Nor does the driver know which units began nothing (only_reads, AUTOCOMMIT): ending
    # one would still cost a hand-off to its thread for a COMMIT that does nothing.
    dialect = engine.sync_engine.dialect
    do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

    def _if_begun(end: Callable[[Any], None]) -> Callable[[Any], None]:
        def _end(dbapi_connection: Any) -> None:
            try:
                begun = dbapi_connection.driver_connection.in_transaction
            except ValueError:  # closed: nothing to end (SQLAlchemy's adapter skips it too)
                return
            if begun:
                end(dbapi_connection)

        return _end

    dialect.do_commit = _if_begun(do_commit)  # type: ignore[method-assign,assignment]
    dialect.do_rollback = _if_begun(do_rollback)  # type: ignore[method-assign,assignment]


async def only_reads(session: AsyncSession) -> None:
    """Declare that ``session``'s unit of work is one statement that only reads; call it
    before that statement.

    On SQLite the statement then runs without a transaction of its own (one statement reads
    one snapshot anyway): no ``BEGIN IMMEDIATE``, which waits for the write lock and costs
    three hand-offs to the driver's thread (~0.1 ms each, measured). Elsewhere, and on a
    session bound to a connection (the tests' savepoints), nothing changes.
    """
    bind = session.bind
    if isinstance(bind, AsyncEngine) and bind.dialect.name == "sqlite":
        await session.connection(execution_options={ONLY_READS: True})


def create_sessionmaker(
    bind: AsyncEngine | AsyncConnection,
    after_commit: AfterCommit,
    info: Mapping[str, Any] | None = None,
) -> Sessionmaker:
    """Sessions whose units of work end with ``after_commit``, carrying ``info`` (shared by
    all of them: the app's passes its key ring, ``auth.signing.KeyRing``).

    ``bind`` is an engine, or (in tests) a connection inside an outer transaction, which
    each session joins with a SAVEPOINT so its commits can still be rolled back.
    """
    return async_sessionmaker(
        bind,
        expire_on_commit=False,
        info={**(info or {}), AFTER_COMMIT: after_commit},
        join_transaction_mode="create_savepoint",
    )


@asynccontextmanager
async def session_scope(
    sessionmaker: Sessionmaker, *, tenant: uuid.UUID | None = None
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on error, then hand over what it held
    back (:class:`AfterCommit`). ``tenant``: the tenant whose rows it works on
    (``rls.set_tenant``)."""
    async with sessionmaker() as session:
        after_commit: AfterCommit = session.info[AFTER_COMMIT]
        if tenant is not None:
            await rls.set_tenant(session, tenant)
        try:
            yield session
            if session.in_transaction():  # a session nothing used has nothing to commit
                await session.commit()
        except BaseException:
            after_commit.rolled_back(session)
            await session.rollback()
            raise
        await after_commit.committed(session)


async def commit_asynchronously(session: AsyncSession) -> None:
    """Let the session's transaction commit without waiting for its WAL to reach the disk.

    PostgreSQL's ``synchronous_commit`` off, for this transaction only: a crash of the
    database server may lose the last moments of such commits (at most about 0.6 s), never
    leave the database inconsistent — what SQLite's ``synchronous=NORMAL`` does for every
    transaction already. For data whose loss in a crash is tolerable (chat messages), not
    for what an operator or a tenant changes.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL synchronous_commit TO OFF"))


async def get_sessionmaker(request: Request) -> Sessionmaker:
    """The app's sessionmaker (``state.AppState.sessionmaker``)."""
    sessionmaker: Sessionmaker = request.app.state.sessionmaker
    return sessionmaker


async def get_session(
    sessionmaker: Annotated[Sessionmaker, Depends(get_sessionmaker)],
) -> AsyncIterator[AsyncSession]:
    """The request's session (FastAPI dependency)."""
    async with session_scope(sessionmaker) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
"""The request's unit of work. ``scope="function"``: it commits when the route returns,
before the response is sent, so a client never sees a success whose commit then failed,
and its next request reads what this one wrote."""


def rowcount(result: Result[Any]) -> int:
    """How many rows an ``UPDATE`` or ``DELETE`` matched (``session.execute`` types its result
    as a plain ``Result``; for these statements it is a ``CursorResult``)."""
    return cast(CursorResult[Any], result).rowcount


def insert(session: AsyncSession, model: type[Any]) -> Any:
    """``INSERT`` into ``model`` with ``ON CONFLICT`` support, for the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


async def lock_key(session: AsyncSession, key: str) -> None:
    """Hold ``key`` until the unit of work ends, where no row stands for what a rule counts
    before writing (an end user, an email not invited yet): units locking the same key take
    turns. On PostgreSQL a transaction's advisory lock on a hash of it (two keys hashing
    alike only wait for each other); SQLite's writing units hold its one write lock anyway."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select_(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
