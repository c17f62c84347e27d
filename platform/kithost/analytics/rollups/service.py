"""Rollups in domain terms: :func:`rollup_pending` recomputes the hours marked by ingestion
(and their UTC days) from raw events; :func:`recompute` does it for any window."""

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
from kithost.models import RollupPeriod

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


async def rollup_hour(session: AsyncSession, tenant_id: uuid.UUID, hour: datetime) -> None:
    """Recompute the tenant's rollups of ``hour`` from its raw events."""
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
    await repository.replace_rollups(
        session, tenant_id, RollupPeriod.hour, hour, list(rows.values())
    )


async def rollup_day(session: AsyncSession, tenant_id: uuid.UUID, day: datetime) -> None:
    """Recompute the tenant's rollups of a UTC ``day`` from its hours (and raw events, for
    distinct end users)."""
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
    await repository.replace_rollups(session, tenant_id, RollupPeriod.day, day, list(rows.values()))


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
    for ``tenant_ids`` from raw events; ``advance`` is called after each hour. Windows older
    than the retention have no raw events left: their rollups become empty."""
    hours = list(hours_between(start, end))
    for tenant_id in tenant_ids:
        for hour in hours:
            async with session_scope(sessionmaker, tenant=tenant_id) as session:
                await rollup_hour(session, tenant_id, hour)
                if hour == hours[-1] or hour + HOUR == day_of(hour + HOUR):
                    await rollup_day(session, tenant_id, day_of(hour))
            advance()
    return len(hours) * len(tenant_ids)


async def tenant_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Every tenant's id, for maintenance over all of them."""
    return await repository.tenant_ids(session)


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    first = hour_of(start.astimezone(UTC))
    return [first + i * HOUR for i in range(max(0, -(-(end - first) // HOUR)))]
