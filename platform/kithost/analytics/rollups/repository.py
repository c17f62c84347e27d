"""SQL of rollups: the queue of hours to recompute (spans tenants), raw events counted per
hour, and rollup rows replaced whole."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, case, delete, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.sql import Stored, between
from kithost.db import insert
from kithost.models import (
    TENANT_WIDE,
    AnalyticsPendingRollup,
    AnalyticsRollup,
    RollupPeriod,
    Tenant,
)


class Pending(NamedTuple):
    tenant_id: uuid.UUID
    hour: datetime
    marked_at: datetime


async def pending_rollups(session: AsyncSession, limit: int) -> Sequence[Pending]:
    """Hours of any tenant waiting for their rollup with their latest mark, the hour marked
    least recently first (spans tenants)."""
    p = AnalyticsPendingRollup
    latest = func.max(p.marked_at)
    result = await session.execute(
        select(p.tenant_id, p.hour, latest)
        .group_by(p.tenant_id, p.hour)
        .order_by(latest)
        .limit(limit)
    )
    return [Pending(*row) for row in result]


async def clear_pending(session: AsyncSession, done: Pending) -> None:
    """Forget the marks of ``done``'s hour up to the latest one read: marks of batches that
    arrived since stay."""
    p = AnalyticsPendingRollup
    await session.execute(
        delete(p).where(
            p.tenant_id == done.tenant_id, p.hour == done.hour, p.marked_at <= done.marked_at
        )
    )


def _json_int(key: str) -> ColumnElement[Any]:
    return func.coalesce(Stored.data[key].as_integer(), 0)


class NameCounts(NamedTuple):
    widget_id: uuid.UUID
    name: str
    events: int
    tokens_in: int
    tokens_out: int
    positive: int


async def name_counts(
    session: AsyncSession, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> Sequence[NameCounts]:
    """Per widget and event name: events, tokens in and out, positive feedback."""
    positive = case((Stored.data["kind"].as_string() == "positive", 1), else_=0)
    result = await session.execute(
        select(
            Stored.widget_id,
            Stored.name,
            func.count(),
            func.sum(_json_int("input_tokens")),
            func.sum(_json_int("output_tokens")),
            func.sum(case((Stored.name == "server.feedback", positive), else_=0)),
        )
        .where(between(tenant_id, start, end))
        .group_by(Stored.widget_id, Stored.name)
    )
    return [
        NameCounts(w, n, c, int(i or 0), int(o or 0), int(p or 0)) for w, n, c, i, o, p in result
    ]


async def distinct_end_users(
    session: AsyncSession, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> dict[uuid.UUID, int]:
    """Distinct end users per widget, and across them under ``TENANT_WIDE`` (none: no key)."""
    scope = between(tenant_id, start, end), Stored.end_user_id.is_not(None)
    users = func.count(distinct(Stored.end_user_id))
    result = await session.execute(
        select(Stored.widget_id, users).where(*scope).group_by(Stored.widget_id)
    )
    counts = {widget_id: count for widget_id, count in result}
    if counts:
        counts[TENANT_WIDE] = await session.scalar(select(users).where(*scope)) or 0
    return counts


async def response_latencies(
    session: AsyncSession, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> Sequence[tuple[uuid.UUID, int | None, int | None]]:
    """(widget, first token ms, total ms) of every finished response."""
    result = await session.execute(
        select(
            Stored.widget_id,
            Stored.data["first_token_ms"].as_integer(),
            Stored.data["total_ms"].as_integer(),
        ).where(between(tenant_id, start, end), Stored.name == "server.response.finished")
    )
    return [(w, f, t) for w, f, t in result]


async def replace_rollups(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: RollupPeriod,
    start: datetime,
    rows: Sequence[dict[str, Any]],
) -> None:
    r = AnalyticsRollup
    await session.execute(
        delete(r).where(r.tenant_id == tenant_id, r.period == period, r.start == start)
    )
    if rows:
        await session.execute(
            insert(session, r),
            [{**row, "tenant_id": tenant_id, "period": period, "start": start} for row in rows],
        )


async def rollups(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: RollupPeriod,
    start: datetime,
    end: datetime,
    widget_id: uuid.UUID | None = None,
) -> Sequence[AnalyticsRollup]:
    r = AnalyticsRollup
    query = select(r).where(
        r.tenant_id == tenant_id, r.period == period, r.start >= start, r.start < end
    )
    if widget_id is not None:
        query = query.where(r.widget_id == widget_id)
    return (await session.execute(query.order_by(r.start))).scalars().all()


SUMMABLE = (
    "loads",
    "opens",
    "sessions",
    "threads",
    "messages",
    "responses",
    "tokens_in",
    "tokens_out",
    "feedback_up",
    "feedback_down",
    "client_errors",
    "guardrails_tripped",
    "end_users",
)


async def tenant_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Every tenant's id (spans tenants: maintenance over all of them)."""
    return list((await session.scalars(select(Tenant.id))).all())
