"""SQL of ingestion: new events stored once, their hours marked for the rollup."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.events import Event as ValidEvent
from kithost.analytics.sql import Stored
from kithost.db import insert
from kithost.models import AnalyticsPendingRollup

_INSERT_AND_MARK = text(
    """
    WITH inserted AS (
        INSERT INTO analytics_events
            (tenant_id, event_id, widget_id, name, occurred_at, received_at, end_user_id,
             thread_id, data)
        SELECT CAST(:tenant_id AS uuid), e.id, CAST(:widget_id AS uuid), e.name,
               to_timestamp(e.time / 1000.0), CAST(:received_at AS timestamptz), e.end_user,
               e.data ->> 'thread_id', e.data
        FROM jsonb_to_recordset(CAST(:events AS jsonb))
            AS e(id text, name text, time bigint, end_user text, data jsonb)
        ON CONFLICT (tenant_id, event_id) DO NOTHING
        RETURNING event_id, occurred_at
    ), marked AS (
        INSERT INTO analytics_pending_rollups (tenant_id, hour, marked_at)
        SELECT DISTINCT CAST(:tenant_id AS uuid), date_trunc('hour', occurred_at, 'UTC'),
               CAST(:received_at AS timestamptz)
        FROM inserted
        ON CONFLICT DO NOTHING
    )
    SELECT event_id FROM inserted
    """
)
"""PostgreSQL: the batch as one JSON parameter and one statement of constant text (prepared
once) that inserts the new events and marks their hours; a multi-row ``VALUES`` statement
is parsed anew for every batch, and arrays of values cost more to send than one JSON."""


async def insert_events(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    received_at: datetime,
    events: Sequence[ValidEvent],
) -> set[str]:
    """Insert the events not stored yet (ids unique within ``events``) and mark their hours
    for the rollup; the ids of the events inserted now."""
    if not events:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        batch = [
            {"id": e.id, "name": e.name, "time": e.time, "end_user": e.end_user, "data": e.data}
            for e in events
        ]
        params = {
            "tenant_id": tenant_id,
            "widget_id": widget_id,
            "received_at": received_at,
            "events": orjson.dumps(batch).decode(),
        }
        return set((await session.execute(_INSERT_AND_MARK, params)).scalars())
    rows = [
        {
            "tenant_id": tenant_id,
            "event_id": e.id,
            "widget_id": widget_id,
            "name": e.name,
            "occurred_at": e.occurred_at,
            "received_at": received_at,
            "end_user_id": e.end_user,
            "thread_id": e.thread_id,
            "data": e.data,
        }
        for e in events
    ]
    statement = (
        insert(session, Stored)
        .on_conflict_do_nothing(index_elements=[Stored.tenant_id, Stored.event_id])
        .returning(Stored.event_id)
    )
    inserted = set((await session.execute(statement, rows)).scalars())
    hours = {
        e.occurred_at.replace(minute=0, second=0, microsecond=0) for e in events if e.id in inserted
    }
    await _mark_pending(session, tenant_id, hours, received_at)
    return inserted


async def _mark_pending(
    session: AsyncSession, tenant_id: uuid.UUID, hours: Iterable[datetime], now: datetime
) -> None:
    rows = [{"tenant_id": tenant_id, "hour": hour, "marked_at": now} for hour in hours]
    if rows:
        statement = insert(session, AnalyticsPendingRollup).on_conflict_do_nothing()
        await session.execute(statement, rows)
