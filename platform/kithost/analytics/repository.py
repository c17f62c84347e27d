"""SQL for analytics. Every statement on tenant data takes the tenant; the few that span
tenants (the rollup queue, retention) say so."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    case,
    delete,
    distinct,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.sql import between
from kithost.models import (
    AnalyticsEvent,
    AnalyticsRollup,
    AnalyticsSettings,
    ErrorGroup,
    ErrorGroupUser,
    RollupPeriod,
    Tenant,
)
from kithost.models.analytics_settings import DEFAULT_RETENTION_DAYS

Stored = AnalyticsEvent


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support, for the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


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
        .where(r.tenant_id == tenant_id, r.period == period, r.start >= start, r.start < end)
        .group_by(r.start)
        .order_by(r.start)
    )
    if widget_id is not None:
        query = query.where(r.widget_id == widget_id)
    return [tuple(row) for row in await session.execute(query)]


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
        r.tenant_id == tenant_id,
        r.period == period,
        r.start >= start,
        r.start < end,
        r.responses > 0,
    )
    if widget_id is not None:
        query = query.where(r.widget_id == widget_id)
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


# --- funnel ----------------------------------------------------------------------------


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


# --- export ----------------------------------------------------------------------------


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


# --- retention and deletion ------------------------------------------------------------


async def retention_days(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    days = await session.scalar(
        select(AnalyticsSettings.retention_days).where(AnalyticsSettings.tenant_id == tenant_id)
    )
    return DEFAULT_RETENTION_DAYS if days is None else days


async def set_retention_days(session: AsyncSession, tenant_id: uuid.UUID, days: int) -> None:
    statement = _insert(session, AnalyticsSettings).values(tenant_id=tenant_id, retention_days=days)
    statement = statement.on_conflict_do_update(
        index_elements=[AnalyticsSettings.tenant_id],
        set_={"retention_days": statement.excluded.retention_days},
    )
    await session.execute(statement)


async def tenants_with_retention(session: AsyncSession) -> Sequence[tuple[uuid.UUID, int]]:
    """Every tenant and its retention in days (spans tenants: the retention sweep)."""
    days = func.coalesce(AnalyticsSettings.retention_days, DEFAULT_RETENTION_DAYS)
    query = select(Tenant.id, days.cast(Integer)).outerjoin(
        AnalyticsSettings, AnalyticsSettings.tenant_id == Tenant.id
    )
    return [(tenant_id, d) for tenant_id, d in await session.execute(query)]


async def purge_events(session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime) -> int:
    result = await session.execute(
        delete(Stored).where(Stored.tenant_id == tenant_id, Stored.occurred_at < cutoff)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_error_groups(session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime) -> int:
    """Groups (their samples and end users) last seen before ``cutoff``."""
    result = await session.execute(
        delete(ErrorGroup).where(ErrorGroup.tenant_id == tenant_id, ErrorGroup.last_seen < cutoff)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_end_user_events(
    session: AsyncSession, tenant_id: uuid.UUID, end_user_id: str
) -> int:
    result = await session.execute(
        delete(Stored).where(Stored.tenant_id == tenant_id, Stored.end_user_id == end_user_id)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def forget_error_group_user(
    session: AsyncSession, tenant_id: uuid.UUID, end_user_id: str
) -> int:
    """Remove the end user from every group's affected users and drop samples of theirs."""
    await session.execute(
        update(ErrorGroup)
        .where(
            ErrorGroup.tenant_id == tenant_id,
            ErrorGroup.sample["end_user"].as_string() == end_user_id,
        )
        .values(sample={})
    )
    result = await session.execute(
        delete(ErrorGroupUser).where(
            ErrorGroupUser.tenant_id == tenant_id, ErrorGroupUser.end_user_id == end_user_id
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
