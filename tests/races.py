"""Requests raced at once through an app whose units of work commit, each on a connection of
its own (not the test's transaction, whose one connection serves one request at a time):
what two clicks, or a visitor's many requests, do to each other. The data is committed, in
tenants deleted afterwards.

On SQLite the app is the same; it runs one writer at a time (``BEGIN IMMEDIATE``), so a
test that needs no more than that runs on both. A module of ``tests/chat/`` using it
overrides that folder's ``sent_tasks`` (it opens the test's transaction, which on SQLite
holds the write lock).

The users a test makes up have addresses of its own domain (:meth:`RacingApp.email`): they
are deleted after too, with the audit entries naming them or the tenants."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.app import create_app
from kithost.db import session_scope
from kithost.models import AuditLogEntry, Tenant, User
from kithost.settings import Settings
from tests.conftest import operator_sessions
from tests.factories import bare_tenant

T = TypeVar("T")
MAX_AT_ONCE = 24


@dataclass
class RacingApp:
    app: FastAPI
    prefix: str
    """The slugs of the tenants :meth:`tenant` makes start with it; they are deleted after."""
    domain: str = field(default_factory=lambda: f"{secrets.token_hex(4)}.race.test")
    """The domain of :meth:`email`'s addresses; their users are deleted after."""
    client: httpx2.AsyncClient = field(init=False)
    """An HTTP client to the app (in process; a 500 is answered, not raised)."""
    made: list[str] = field(default_factory=list)
    """The ids of the tenants :meth:`tenant` made: the audit entries naming one the test
    deleted (``tenant.deleted``, of no tenant) are deleted after too."""

    def __post_init__(self) -> None:
        transport = httpx2.ASGITransport(app=self.app, raise_app_exceptions=False)
        self.client = httpx2.AsyncClient(transport=transport, base_url="http://testserver")

    @asynccontextmanager
    async def arranging(self) -> AsyncIterator[AsyncSession]:
        """A unit of work (committed) for arranging data of any tenant."""
        async with session_scope(operator_sessions(self.app)) as session:
            yield session

    async def warm(self, count: int) -> None:
        """Open ``count`` pooled connections ahead: requests raced at once then start
        together, not one new connection apart (PostgreSQL's; SQLite's cost nothing, and
        each would begin a write transaction)."""
        if self.app.state.engine.dialect.name != "postgresql":
            return
        barrier = asyncio.Barrier(count)

        async def hold(_: int) -> None:
            async with self.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                await barrier.wait()

        await at_once(count, hold)

    async def tenant(self, session: AsyncSession) -> Tenant:
        """A tenant deleted after the test, with all the test made in it."""
        tenant = await bare_tenant(session, self.prefix)
        self.made.append(str(tenant.id))
        return tenant

    def email(self, name: str) -> str:
        """An address of the test's own: a user made with it is deleted after the test."""
        return f"{name}@{self.domain}"

    async def _clean_up(self) -> None:
        """Delete the tenants and users the test made, and the audit entries naming them."""
        async with self.arranging() as session:
            tenants = select(Tenant.id).where(Tenant.slug.like(f"{self.prefix}-%"))
            users = select(User.id).where(User.email.like(f"%@{self.domain}"))
            ids = [str(i) for i in (await session.scalars(tenants.union(users))).all()]
            ids = list({*ids, *self.made})
            if ids:
                named = or_(AuditLogEntry.target_id.in_(ids), AuditLogEntry.actor_id.in_(ids))
                await session.execute(delete(AuditLogEntry).where(named))
            await session.execute(delete(Tenant).where(Tenant.slug.like(f"{self.prefix}-%")))
            await session.execute(delete(User).where(User.email.like(f"%@{self.domain}")))


@asynccontextmanager
async def racing_app(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, **overrides: object
) -> AsyncIterator[RacingApp]:
    """The app on ``settings`` (changed by ``overrides``), in its lifespan, its pool large
    enough for :data:`MAX_AT_ONCE` requests; the Celery tasks it sends go nowhere (no worker
    here). What the test made is deleted after (:meth:`RacingApp._clean_up`)."""
    pool = {"database_pool_size": MAX_AT_ONCE}
    app = create_app(settings.model_copy(update={**pool, **overrides}))
    monkeypatch.setattr(app.state.celery, "send_task", _sent_nowhere)
    racing = RacingApp(app, f"race{secrets.token_hex(3)}")
    async with app.router.lifespan_context(app):
        try:
            yield racing
        finally:
            await racing.client.aclose()
            await racing._clean_up()


def _sent_nowhere(*_args: Any, **_kwargs: Any) -> None:
    return None


async def at_once(count: int, request: Callable[[int], Awaitable[T]]) -> list[T]:
    """``request(0)`` … ``request(count - 1)``, all started before any is awaited."""
    return list(await asyncio.gather(*(request(n) for n in range(count))))


async def ended_or_waiting(racing: RacingApp, task: asyncio.Task[Any], query: str = "%") -> None:
    """Until ``task`` has run as far as it can: ended, or waiting for a row lock (held by
    another unit of work until it commits) in a statement matching ``query``, an ``ILIKE``
    pattern (``"DELETE FROM chat_attachments%"``, ``"%webhook_deliveries%"``; any statement
    by default). PostgreSQL only: it reads ``pg_stat_activity``."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query ILIKE :query"
    ).bindparams(query=query)
    for _ in range(400):
        if task.done():
            return
        async with racing.arranging() as session:
            if await session.scalar(waiting):
                return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{task.get_name()} neither ended nor waited in {query!r}")
