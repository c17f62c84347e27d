"""Hosted mints' ``session_mints`` rows, written behind the answer by one writer per process.

A mint's row waits in a list, and one write at a time inserts everything waiting, in one
transaction (``kit.batching.Batcher``): under load many rows share a commit, and the rows'
writes never queue on each other. (One write per row, each behind its own answer, took
every pooled connection under load; on SQLite they then waited on each other's write lock,
and a request needing the database waited behind them for up to half a second:
``bench/README.md``.)

A row that cannot be written is logged (``hosted_mint_not_recorded``) and dropped: only
that secret's refresh is then refused, and the loader mints anew. When a shared write
fails, each of its rows is tried alone, so one bad row never costs the others.

A row names its end user and origin: the rows follow the analytics retention and end users'
erasure (a :class:`~kithost.analytics.retention.service.DataOwner`, registered as this
module is imported).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from sqlalchemy import delete, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from kithost import rls
from kithost.analytics.retention import service as retention
from kithost.db import Sessionmaker, rowcount, session_scope
from kithost.kit.batching import Batcher
from kithost.models import SessionMint
from kithost.state import app_state

log = structlog.get_logger(__name__)

Row = dict[str, Any]
"""The ``session_mints`` columns of one mint."""


class MintRecorder:
    def __init__(self, sessionmaker: Sessionmaker) -> None:
        self._sessionmaker = sessionmaker
        self._rows = Batcher(self._insert)

    async def record(self, row: Row) -> None:
        """Write ``row`` with whatever else is waiting; return once it is written or logged
        as lost (a ``BackgroundTasks`` job, so the answer never waits for it)."""
        await self._rows.submit(row)

    async def aclose(self) -> None:
        """Write what is waiting."""
        await self._rows.drain()

    async def _insert(self, rows: list[Row]) -> None:
        try:
            async with session_scope(self._sessionmaker) as session:
                for tenant_id, of_tenant in groupby(rows, key=itemgetter("tenant_id")):
                    await rls.set_tenant(session, tenant_id)
                    await session.execute(insert(SessionMint), list(of_tenant))
        except SQLAlchemyError:
            if len(rows) > 1:
                for row in rows:
                    await self._insert([row])
                return
            log.exception("hosted_mint_not_recorded", widget_id=str(rows[0]["widget_id"]))


async def _recorder(request: Request) -> MintRecorder:
    return app_state(request).part(MintRecorder)


AppMintRecorder = Annotated[MintRecorder, Depends(_recorder)]


async def _purge_before(session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime) -> int:
    return await _delete(session, tenant_id, SessionMint.created_at < cutoff)


async def _delete_end_user(session: AsyncSession, tenant_id: uuid.UUID, end_user_id: str) -> int:
    return await _delete(session, tenant_id, SessionMint.end_user_id == end_user_id)


async def _delete(session: AsyncSession, tenant_id: uuid.UUID, which: ColumnElement[bool]) -> int:
    statement = delete(SessionMint).where(SessionMint.tenant_id == tenant_id, which)
    return rowcount(await session.execute(statement))


retention.register(retention.DataOwner("session_mints", _purge_before, _delete_end_user))
