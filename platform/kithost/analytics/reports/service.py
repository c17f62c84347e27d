"""Reports in domain terms: a metric per bucket of a window in a time zone (:func:`series`),
the conversion funnel, and latency percentiles; read from the rollups (the funnel and
distinct end users over non-UTC days from raw events)."""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics import latency
from kithost.analytics.reports import repository
from kithost.analytics.rollups.service import DAY, HOUR, day_of, hour_of
from kithost.errors import invalid_field
from kithost.models import TENANT_WIDE, RollupPeriod, Tenant

MAX_BUCKETS = 1000


class Interval(StrEnum):
    hour = "hour"
    day = "day"


class Metric(StrEnum):
    loads = "loads"
    opens = "opens"
    sessions = "sessions"
    threads = "threads"
    messages = "messages"
    responses = "responses"
    tokens_in = "tokens_in"
    tokens_out = "tokens_out"
    feedback_up = "feedback_up"
    feedback_down = "feedback_down"
    client_errors = "client_errors"
    guardrails_tripped = "guardrails_tripped"
    end_users = "end_users"
    first_token_p50 = "first_token_p50"  # noqa: S105 (not a secret)
    first_token_p95 = "first_token_p95"  # noqa: S105
    total_p50 = "total_p50"
    total_p95 = "total_p95"


PERCENTILES = {
    Metric.first_token_p50: ("first_token_ms", 0.50),
    Metric.first_token_p95: ("first_token_ms", 0.95),
    Metric.total_p50: ("total_ms", 0.50),
    Metric.total_p95: ("total_ms", 0.95),
}


class Window:
    """Buckets of an interval in a time zone covering [since, until), counting the hours
    from ``since``'s to ``until``'s: a day bucket the range starts or ends within counts
    only its hours in the range."""

    def __init__(
        self, starts: list[datetime], interval: Interval, since: datetime, until: datetime
    ) -> None:
        self.starts = starts
        """Bucket starts in the time zone, plus the end of the last bucket."""
        self.interval = interval
        self.utc_starts = [s.astimezone(UTC) for s in starts]
        self.start, self.end = hours(since, until)
        """The start of the first hour counted and the end of the last."""
        self.aligned_days = interval is Interval.day and all(
            s.utcoffset() == timedelta(0) for s in starts
        )
        """Whether the buckets are UTC days (so the daily rollups answer for the whole ones)."""

    def spans(self) -> list[tuple[RollupPeriod, datetime, datetime]]:
        """The rollups that answer for [start, end), each for a span of it: the daily ones
        for the whole buckets when those are UTC days, the hourly ones for the rest."""
        hours = [(RollupPeriod.hour, self.start, self.end)]
        if not self.aligned_days:
            return hours
        starts = self.utc_starts
        first = starts[0] if starts[0] == self.start else starts[1]
        last = starts[-1] if starts[-1] == self.end else starts[-2]
        if first >= last:
            return hours
        spans = [
            (RollupPeriod.hour, self.start, first),
            (RollupPeriod.day, first, last),
            (RollupPeriod.hour, last, self.end),
        ]
        return [span for span in spans if span[1] < span[2]]

    def bucket(self, moment: datetime) -> int | None:
        """The bucket counting ``moment`` (an hour's start or an event's time), None outside
        [start, end). The range's first and last hours count in its first and last buckets
        even where they start before the first's midnight (a zone at +05:45: a range from
        local midnight counts the hour from 18:00 UTC), so a day's total is its hours' sum."""
        if not self.start <= moment < self.end:
            return None
        index = bisect.bisect_right(self.utc_starts, moment) - 1
        return min(max(index, 0), len(self.starts) - 2)


def hours(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The hours from ``since``'s to ``until``'s, as [start, end) in UTC: what every report
    counts (the rollups hold no finer), so that their figures of one range agree."""
    last = hour_of(until.astimezone(UTC) - timedelta(microseconds=1))
    return hour_of(since.astimezone(UTC)), last + HOUR


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):
        raise invalid_field("tz", "an IANA time zone such as Europe/Paris") from None


def window(since: datetime, until: datetime, interval: Interval, tz: ZoneInfo) -> Window:
    if until <= since:
        raise invalid_field("until", "must be after since")
    local = since.astimezone(tz)
    starts: list[datetime] = []
    if interval is Interval.hour:
        moment = hour_of(since.astimezone(UTC))
        while moment < until and len(starts) <= MAX_BUCKETS:
            starts.append(moment.astimezone(tz))
            moment += HOUR
        starts.append(moment.astimezone(tz))
    else:
        day: date = local.date()
        while True:
            # A midnight the clocks skip (summer time starting at 00:00) starts its day at
            # the day's first real moment; a day the zone skipped altogether is no bucket.
            start = datetime.combine(day, time(), tz).astimezone(UTC).astimezone(tz)
            if not starts or starts[-1] < start:
                starts.append(start)
            if start >= until or len(starts) > MAX_BUCKETS + 1:
                break
            day += DAY
    if len(starts) > MAX_BUCKETS + 1:
        raise invalid_field("since", f"at most {MAX_BUCKETS} {interval.value}s per series")
    return Window(starts, interval, since, until)


async def series(
    session: AsyncSession,
    tenant: Tenant,
    metric: Metric,
    where: Window,
    widget_id: uuid.UUID | None,
) -> list[float | None]:
    """The metric's value per bucket of ``where``. Distinct end users of a span of day
    buckets the daily rollups do not answer for (a day in another zone, the range's first or
    last day when partial) are counted from raw events."""
    values: list[float | None] = [0] * (len(where.starts) - 1)
    if metric in PERCENTILES:
        column, q = PERCENTILES[metric]
        merged: list[list[int]] = [latency.empty() for _ in values]
        for period, start, end in where.spans():
            for row_start, counts in await repository.histograms(
                session, tenant.id, period, column, start, end, widget_id
            ):
                index = where.bucket(row_start)
                if index is not None:
                    latency.add(merged[index], counts)
        return [latency.percentile(counts, q) for counts in merged]
    # Distinct across the widgets: a row of its own.
    rows_of = TENANT_WIDE if metric is Metric.end_users and widget_id is None else widget_id
    distinct_days = metric is Metric.end_users and where.interval is Interval.day
    for period, start, end in where.spans():
        if distinct_days and period is RollupPeriod.hour:
            users: list[set[str]] = [set() for _ in values]
            async for user, at in repository.end_user_times(
                session, tenant.id, start, end, widget_id
            ):
                index = where.bucket(at)
                if index is not None:
                    users[index].add(user)
            for index, found in enumerate(users):
                values[index] = (values[index] or 0) + len(found)
            continue
        for row_start, value in await repository.summed(
            session, tenant.id, period, start, end, rows_of, [metric.value]
        ):
            index = where.bucket(row_start)
            if index is not None:
                values[index] = (values[index] or 0) + int(value or 0)
    return values


async def totals_by_widget(
    session: AsyncSession,
    tenant: Tenant,
    metric: Metric,
    since: datetime,
    until: datetime,
    widget_id: uuid.UUID | None,
) -> Sequence[tuple[uuid.UUID, int]]:
    """A count per widget with any, most first (one query for a list of widgets, not one a
    widget), over the :func:`hours` of the range: from the daily rollups when those are
    whole UTC days (24 times fewer rows)."""
    if metric in PERCENTILES or metric is Metric.end_users:
        raise invalid_field("metric", "a count: percentiles and end users do not add up")
    start, end = hours(since, until)
    whole_days = start == day_of(start) and end == day_of(end)
    period = RollupPeriod.day if whole_days else RollupPeriod.hour
    return await repository.summed_by_widget(
        session, tenant.id, period, start, end, widget_id, metric.value
    )


@dataclass(frozen=True)
class Funnel:
    loads: int
    opens: int
    conversations: int
    engaged: int
    positive_feedback: int


async def funnel(
    session: AsyncSession,
    tenant: Tenant,
    since: datetime,
    until: datetime,
    widget_id: uuid.UUID | None,
) -> Funnel:
    """The funnel of the raw events over the :func:`hours` of the range."""
    start, end = hours(since, until)
    return Funnel(*await repository.funnel_counts(session, tenant.id, start, end, widget_id))


@dataclass(frozen=True)
class Latency:
    responses: int
    first_token_p50: int | None
    first_token_p95: int | None
    total_p50: int | None
    total_p95: int | None


async def latencies(
    session: AsyncSession,
    tenant: Tenant,
    since: datetime,
    until: datetime,
    widget_id: uuid.UUID | None,
) -> Latency:
    """Percentiles over the :func:`hours` of the range."""
    (start, end), hour = hours(since, until), RollupPeriod.hour
    first_rows = await repository.histograms(
        session, tenant.id, hour, "first_token_ms", start, end, widget_id
    )
    total_rows = await repository.histograms(
        session, tenant.id, hour, "total_ms", start, end, widget_id
    )
    first = latency.merge(counts for _, counts in first_rows)
    total = latency.merge(counts for _, counts in total_rows)
    return Latency(
        responses=sum(total),
        first_token_p50=latency.percentile(first, 0.5),
        first_token_p95=latency.percentile(first, 0.95),
        total_p50=latency.percentile(total, 0.5),
        total_p95=latency.percentile(total, 0.95),
    )
