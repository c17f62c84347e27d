"""SQL of reports: rollups added up per bucket, latency histograms, and raw events (the
funnel, distinct end users, the export). Every statement takes the tenant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.sql import Stored, between
from kithost.models import AnalyticsEvent, AnalyticsRollup, RollupPeriod


def _rollups(
    tenant_id: uuid.UUID,
    period: RollupPeriod,
    start: datetime,
    end: datetime,
    widget_id: uuid.UUID | None,
) -> list[ColumnElement[bool]]:
    """The tenant's rollups of ``period`` starting in [``start``, ``end``), of one widget
    or all."""
    r = AnalyticsRollup
    where = [r.tenant_id == tenant_id, r.period == period, r.start >= start, r.start < end]
    return where if widget_id is None else [*where, r.widget_id == widget_id]


async def summed(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: RollupPeriod,
    start: datetime,
    end: datetime,
    widget_id: uuid.UUID | None,
    columns: Sequence[str],
) -> Sequence[tuple[Any, ...]]:
    """Per rollup start: ``columns`` added up over the tenant's widgets (or one widget)."""
    r = AnalyticsRollup
    sums = [func.sum(getattr(r, c)) for c in columns]
    query = (
        select(r.start, *sums)
        .where(*_rollups(tenant_id, period, start, end, widget_id))
        .group_by(r.start)
        .order_by(r.start)
    )
    return [tuple(row) for row in await session.execute(query)]


async def summed_by_widget(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: RollupPeriod,
    start: datetime,
    end: datetime,
    widget_id: uuid.UUID | None,
    column: str,
) -> Sequence[tuple[uuid.UUID, int]]:
    """Per widget with any: ``column`` added up over the rollups from ``start`` to ``end``,
    most first."""
    r = AnalyticsRollup
    total = func.sum(getattr(r, column))
    query = (
        select(r.widget_id, total)
        .where(*_rollups(tenant_id, period, start, end, widget_id))
        .group_by(r.widget_id)
        .having(total > 0)
        .order_by(total.desc(), r.widget_id)
    )
    return [(widget, int(value)) for widget, value in await session.execute(query)]


async def histograms(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: RollupPeriod,
    column: str,
    start: datetime,
    end: datetime,
    widget_id: uuid.UUID | None,
) -> Sequence[tuple[datetime, list[int]]]:
    """(start, latency histogram ``column``) of the rollups with responses in them."""
    r = AnalyticsRollup
    query = select(r.start, getattr(r, column)).where(
        *_rollups(tenant_id, period, start, end, widget_id), r.responses > 0
    )
    return [(s, counts) for s, counts in await session.execute(query)]


async def end_user_times(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    start: datetime,
    end: datetime,
    widget_id: uuid.UUID | None,
) -> AsyncIterator[tuple[str, datetime]]:
    """(end user, time) of the tenant's events with an end user, for distinct counts."""
    query = select(Stored.end_user_id, Stored.occurred_at).where(
        between(tenant_id, start, end), Stored.end_user_id.is_not(None)
    )
    if widget_id is not None:
        query = query.where(Stored.widget_id == widget_id)
    async for user, at in await session.stream(query.execution_options(yield_per=2000)):
        if user is not None:
            yield user, at


async def funnel_counts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    start: datetime,
    end: datetime,
    widget_id: uuid.UUID | None,
) -> tuple[int, int, int, int, int]:
    """Loads, opens, threads with a message, threads with ≥ 3, threads with positive
    feedback among those with a message."""
    scope = between(tenant_id, start, end)
    if widget_id is not None:
        scope = and_(scope, Stored.widget_id == widget_id)
    named = select(
        func.sum(case((Stored.name == "loader.loaded", 1), else_=0)),
        func.sum(case((Stored.name == "widget.opened", 1), else_=0)),
    ).where(scope, Stored.name.in_(("loader.loaded", "widget.opened")))
    loads, opens = (await session.execute(named)).one()
    threads = (
        select(Stored.thread_id.label("thread_id"), func.count().label("messages"))
        .where(scope, Stored.name == "server.message.received", Stored.thread_id.is_not(None))
        .group_by(Stored.thread_id)
        .subquery()
    )
    liked = (
        select(distinct(Stored.thread_id))
        .where(
            scope,
            Stored.name == "server.feedback",
            Stored.data["kind"].as_string() == "positive",
        )
        .scalar_subquery()
    )
    staged = select(
        func.count(),
        func.coalesce(func.sum(case((threads.c.messages >= 3, 1), else_=0)), 0),
        func.coalesce(func.sum(case((threads.c.thread_id.in_(liked), 1), else_=0)), 0),
    ).select_from(threads)
    conversations, engaged, positive = (await session.execute(staged)).one()
    return int(loads or 0), int(opens or 0), int(conversations), int(engaged), int(positive)


async def stream_events(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    start: datetime,
    end: datetime,
    widget_id: uuid.UUID | None,
) -> AsyncIterator[AnalyticsEvent]:
    query = select(Stored).where(between(tenant_id, start, end)).order_by(Stored.occurred_at)
    if widget_id is not None:
        query = query.where(Stored.widget_id == widget_id)
    async for event in await session.stream_scalars(query.execution_options(yield_per=1000)):
        yield event
