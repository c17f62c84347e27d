"""SQL for analytics. Every statement on tenant data takes the tenant; the few that span
tenants (the rollup queue, retention) say so."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    delete,
    distinct,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.events import Event as ValidEvent
from kithost.models import (
    AnalyticsEvent,
    AnalyticsPendingRollup,
    AnalyticsRollup,
    AnalyticsSettings,
    ErrorGroup,
    ErrorGroupUser,
    ErrorStatus,
    RollupPeriod,
    Tenant,
)
from kithost.models.analytics_settings import DEFAULT_RETENTION_DAYS

Stored = AnalyticsEvent


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support, for the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


# --- ingestion -------------------------------------------------------------------------


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
        _insert(session, Stored)
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
        statement = _insert(session, AnalyticsPendingRollup).on_conflict_do_nothing()
        await session.execute(statement, rows)


@dataclass(frozen=True)
class Occurrences:
    """New occurrences of one client error group within a batch."""

    widget_id: uuid.UUID
    fingerprint: str
    kind: str
    message: str
    frame: str | None
    hint: str | None
    sample: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    count: int
    end_users: set[str]


async def add_occurrences(
    session: AsyncSession, tenant_id: uuid.UUID, found: Occurrences, now: datetime
) -> uuid.UUID | None:
    """Count ``found`` into its group (created if new; reopened when resolved before its
    latest occurrence) and remember its end users; the group's id when it is new."""
    group = ErrorGroup.__table__.c
    new_id = uuid.uuid4()
    statement = _insert(session, ErrorGroup).values(
        id=new_id,
        created_at=now,
        updated_at=now,
        tenant_id=tenant_id,
        widget_id=found.widget_id,
        fingerprint=found.fingerprint,
        kind=found.kind,
        message=found.message,
        frame=found.frame,
        hint=found.hint,
        sample=found.sample,
        first_seen=found.first_seen,
        last_seen=found.last_seen,
        count=found.count,
        status=ErrorStatus.open,
    )
    new = statement.excluded
    reopened = and_(group.status == ErrorStatus.resolved, group.resolved_at < new.last_seen)
    newer = new.last_seen >= group.last_seen
    statement = statement.on_conflict_do_update(
        index_elements=[group.tenant_id, group.widget_id, group.fingerprint],
        set_={
            "count": group.count + new.count,
            "first_seen": case(
                (new.first_seen < group.first_seen, new.first_seen), else_=group.first_seen
            ),
            "last_seen": case((newer, new.last_seen), else_=group.last_seen),
            "sample": case((newer, new.sample), else_=group.sample),
            "hint": case((newer, new.hint), else_=group.hint),
            "status": case((reopened, ErrorStatus.open.value), else_=group.status),
            "resolved_at": case((reopened, None), else_=group.resolved_at),
            "updated_at": now,
        },
    ).returning(group.id)
    group_id = (await session.execute(statement)).scalar_one()
    if found.end_users:
        users = _insert(session, ErrorGroupUser).on_conflict_do_nothing()
        await session.execute(
            users,
            [
                {"group_id": group_id, "end_user_id": user, "tenant_id": tenant_id}
                for user in sorted(found.end_users)
            ],
        )
    return group_id if group_id == new_id else None


# --- rollups ---------------------------------------------------------------------------


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


def _between(tenant_id: uuid.UUID, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(
        Stored.tenant_id == tenant_id, Stored.occurred_at >= start, Stored.occurred_at < end
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
        .where(_between(tenant_id, start, end))
        .group_by(Stored.widget_id, Stored.name)
    )
    return [
        NameCounts(w, n, c, int(i or 0), int(o or 0), int(p or 0)) for w, n, c, i, o, p in result
    ]


async def distinct_end_users(
    session: AsyncSession, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> dict[uuid.UUID, int]:
    result = await session.execute(
        select(Stored.widget_id, func.count(distinct(Stored.end_user_id)))
        .where(_between(tenant_id, start, end), Stored.end_user_id.is_not(None))
        .group_by(Stored.widget_id)
    )
    return {widget_id: count for widget_id, count in result}


async def response_latencies(
    session: AsyncSession, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> Sequence[tuple[uuid.UUID, int | None, int | None]]:
    """(widget, first token ms, total ms) of every finished response."""
    result = await session.execute(
        select(
            Stored.widget_id,
            Stored.data["first_token_ms"].as_integer(),
            Stored.data["total_ms"].as_integer(),
        ).where(_between(tenant_id, start, end), Stored.name == "server.response.finished")
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
            _insert(session, r),
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
        _between(tenant_id, start, end), Stored.end_user_id.is_not(None)
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
    scope = _between(tenant_id, start, end)
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


# --- error groups ----------------------------------------------------------------------


def _affected() -> Any:
    return (
        select(func.count())
        .where(ErrorGroupUser.group_id == ErrorGroup.id)
        .correlate(ErrorGroup)
        .scalar_subquery()
        .label("affected_end_users")
    )


async def list_error_groups(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    status: ErrorStatus | None,
    widget_id: uuid.UUID | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[tuple[ErrorGroup, int]]:
    """The tenant's groups, latest occurrence first, from the one after ``before``."""
    g = ErrorGroup
    query: Select[Any] = (
        select(g, _affected())
        .where(g.tenant_id == tenant_id)
        .order_by(g.last_seen.desc(), g.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(g.status == status)
    if widget_id is not None:
        query = query.where(g.widget_id == widget_id)
    if before is not None:
        seen, id = before
        query = query.where(or_(g.last_seen < seen, and_(g.last_seen == seen, g.id < id)))
    return [(group, affected) for group, affected in await session.execute(query)]


async def get_error_group(
    session: AsyncSession, tenant_id: uuid.UUID, group_id: uuid.UUID
) -> tuple[ErrorGroup, int] | None:
    query = select(ErrorGroup, _affected()).where(
        ErrorGroup.tenant_id == tenant_id, ErrorGroup.id == group_id
    )
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])


# --- export ----------------------------------------------------------------------------


async def stream_events(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    start: datetime,
    end: datetime,
    widget_id: uuid.UUID | None,
) -> AsyncIterator[AnalyticsEvent]:
    query = select(Stored).where(_between(tenant_id, start, end)).order_by(Stored.occurred_at)
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
