"""Rollups in domain terms: :func:`rollup_pending` recomputes the hours marked by ingestion
(and their UTC days) from raw events; :func:`recompute` does it for any window.

Rollups outlive the raw events they count (the retention purges those; an end user's erasure
deletes theirs), so a bucket's raw events may no longer be all it counted: an event arriving
late for such a bucket (anyone may post one, dated up to :data:`~kithost.analytics.events.MAX_AGE`
back, within the tenant's retention) must not make its figures a count of what is left.
The rollup of marked hours therefore only adds: a recomputed figure replaces the stored one
when it is higher (over complete raw events it always is, or equal). Only :func:`recompute`,
an operator's explicit rewrite of a window, counts from scratch."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.analytics import latency
from kithost.analytics.rollups import repository
from kithost.db import Sessionmaker, session_scope
from kithost.models import AnalyticsRollup, RollupPeriod

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


COUNTED = {
    "loader.loaded": "loads",
    "widget.opened": "opens",
    "server.session.minted": "sessions",
    "server.thread.created": "threads",
    "server.message.received": "messages",
    "server.response.finished": "responses",
    "client.error": "client_errors",
    "server.guardrail.tripped": "guardrails_tripped",
}


def _blank() -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(repository.SUMMABLE, 0)
    row["first_token_ms"] = latency.empty()
    row["total_ms"] = latency.empty()
    return row


async def rollup_hour(
    session: AsyncSession, tenant_id: uuid.UUID, hour: datetime, *, from_scratch: bool = False
) -> None:
    """Recompute the tenant's rollups of ``hour`` from its raw events, never below what they
    held unless ``from_scratch``."""
    end = hour + HOUR
    rows: dict[uuid.UUID, dict[str, Any]] = defaultdict(_blank)
    for counts in await repository.name_counts(session, tenant_id, hour, end):
        row = rows[counts.widget_id]
        metric = COUNTED.get(counts.name)
        if metric is not None:
            row[metric] += counts.events
        if counts.name == "server.response.finished":
            row["tokens_in"] += counts.tokens_in
            row["tokens_out"] += counts.tokens_out
        elif counts.name == "server.feedback":
            row["feedback_up"] += counts.positive
            row["feedback_down"] += counts.events - counts.positive
    for widget_id, users in (
        await repository.distinct_end_users(session, tenant_id, hour, end)
    ).items():
        rows[widget_id]["end_users"] = users
    first: dict[uuid.UUID, list[int]] = defaultdict(list)
    total: dict[uuid.UUID, list[int]] = defaultdict(list)
    for widget_id, first_ms, total_ms in await repository.response_latencies(
        session, tenant_id, hour, end
    ):
        if first_ms is not None:
            first[widget_id].append(first_ms)
        if total_ms is not None:
            total[widget_id].append(total_ms)
    for widget_id, row in rows.items():
        row["widget_id"] = widget_id
        row["first_token_ms"] = latency.histogram(first[widget_id])
        row["total_ms"] = latency.histogram(total[widget_id])
    await _store(session, tenant_id, RollupPeriod.hour, hour, rows, from_scratch=from_scratch)


async def rollup_day(
    session: AsyncSession, tenant_id: uuid.UUID, day: datetime, *, from_scratch: bool = False
) -> None:
    """Recompute the tenant's rollups of a UTC ``day`` from its hours (and raw events, for
    distinct end users), never below what they held unless ``from_scratch``."""
    end = day + DAY
    rows: dict[uuid.UUID, dict[str, Any]] = defaultdict(_blank)
    for hourly in await repository.rollups(session, tenant_id, RollupPeriod.hour, day, end):
        row = rows[hourly.widget_id]
        for metric in repository.SUMMABLE:
            row[metric] += getattr(hourly, metric)
        latency.add(row["first_token_ms"], hourly.first_token_ms)
        latency.add(row["total_ms"], hourly.total_ms)
    users = await repository.distinct_end_users(session, tenant_id, day, end)
    for widget_id, row in rows.items():
        row["widget_id"] = widget_id
        row["end_users"] = users.get(widget_id, 0)
    await _store(session, tenant_id, RollupPeriod.day, day, rows, from_scratch=from_scratch)


async def _store(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: RollupPeriod,
    start: datetime,
    rows: dict[uuid.UUID, dict[str, Any]],
    *,
    from_scratch: bool,
) -> None:
    """Replace the bucket's rows with ``rows`` (by widget) raised to the stored figures where
    those are higher, or as they are ``from_scratch``."""
    if not from_scratch:
        end = start + (HOUR if period is RollupPeriod.hour else DAY)
        for stored in await repository.rollups(session, tenant_id, period, start, end):
            _raise_to(rows[stored.widget_id], stored)
    await repository.replace_rollups(session, tenant_id, period, start, list(rows.values()))


def _raise_to(row: dict[str, Any], stored: AnalyticsRollup) -> None:
    """Each of ``row``'s figures at least ``stored``'s: counts of raw events (and latency
    histograms, bucket by bucket) only grow while the raw events are all there, so a lower
    one means some were purged or erased, and the stored figure is the better count."""
    row["widget_id"] = stored.widget_id
    for metric in repository.SUMMABLE:
        row[metric] = max(row[metric], getattr(stored, metric))
    for column in ("first_token_ms", "total_ms"):
        row[column] = latency.highest(row[column], getattr(stored, column))


def day_of(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


async def rollup_pending(sessionmaker: Sessionmaker, limit: int = 500) -> int:
    """Recompute the hours that got events since their last rollup; returns how many."""
    async with session_scope(sessionmaker) as session:
        await rls.bypass(session, rls.Bypass.sweep)
        pending = await repository.pending_rollups(session, limit)
    for item in pending:
        async with session_scope(sessionmaker, tenant=item.tenant_id) as session:
            await rollup_hour(session, item.tenant_id, item.hour)
            await rollup_day(session, item.tenant_id, day_of(item.hour))
            await repository.clear_pending(session, item)
    return len(pending)


async def recompute(
    sessionmaker: Sessionmaker,
    tenant_ids: Sequence[uuid.UUID],
    start: datetime,
    end: datetime,
    advance: Callable[[], None] = lambda: None,
) -> int:
    """Recompute the rollups of every hour in [start, end) (whole hours and their UTC days)
    for ``tenant_ids`` from raw events, from scratch; ``advance`` is called after each hour.
    Windows older than the retention have no raw events left: their rollups become empty."""
    hours = list(hours_between(start, end))
    for tenant_id in tenant_ids:
        for hour in hours:
            async with session_scope(sessionmaker, tenant=tenant_id) as session:
                await rollup_hour(session, tenant_id, hour, from_scratch=True)
                if hour == hours[-1] or hour + HOUR == day_of(hour + HOUR):
                    await rollup_day(session, tenant_id, day_of(hour), from_scratch=True)
            advance()
    return len(hours) * len(tenant_ids)


async def tenant_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Every tenant's id, for maintenance over all of them."""
    return await repository.tenant_ids(session)


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    first = hour_of(start.astimezone(UTC))
    return [first + i * HOUR for i in range(max(0, -(-(end - first) // HOUR)))]
