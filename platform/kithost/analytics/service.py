"""Analytics in domain terms: batches in, events stored once, rollups, queries, retention.

- The API turns a body into a :class:`Batch` (:func:`parse_batch`) without any database.
- Workers :func:`store` events idempotently: only events inserted now count into error
  groups and mark their hour for the rollup, so a redelivered batch changes nothing.
- :func:`rollup_pending` recomputes marked hours (and their UTC days) from raw events;
  :func:`recompute` does it for any window.
- :func:`purge_expired` and :func:`delete_end_user` are the one place where analytics data
  (and, once the chat store exists, chat data) is removed.
"""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.analytics import events as contract
from kithost.analytics import latency, repository
from kithost.analytics.events import Dropped, Event
from kithost.audit import service as audit
from kithost.audit.service import Actor
from kithost.chat import service as chat
from kithost.db import Sessionmaker, session_scope
from kithost.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    invalid_field,
)
from kithost.models import ErrorGroup, ErrorStatus, RollupPeriod, Tenant
from kithost.models.base import utcnow
from kithost.webhooks import service as webhooks

log = structlog.get_logger(__name__)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MAX_BUCKETS = 1000


# --- ingestion (API side: no database) -------------------------------------------------


@dataclass(frozen=True)
class Batch:
    events: list[Event]
    dropped: list[Dropped]


def parse_batch(body: bytes, content_type: str | None, now: datetime) -> Batch:
    """A loader's body as valid events and the reasons for the others; a body that is not a
    batch at all raises."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in ("application/json", "text/plain"):
        raise UnsupportedMediaType("Send application/json or text/plain (sendBeacon).")
    if len(body) > contract.MAX_BODY_BYTES:
        raise PayloadTooLarge(f"A batch has at most {contract.MAX_BODY_BYTES} bytes.")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("The body is not JSON.", code="invalid_json") from None
    if not isinstance(document, dict):
        raise invalid_field("", "a JSON object with end_user and events", "type")
    unknown = sorted(set(document) - {"end_user", "events"})
    if unknown:
        raise invalid_field(unknown[0], "unknown field", "extra_forbidden")
    end_user = document.get("end_user")
    if not contract.valid_end_user(end_user):
        raise invalid_field("end_user", "the u:… or a:… id from the session, or null")
    raw_events = document.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        raise invalid_field("events", "a non-empty list of events", "type")
    if len(raw_events) > contract.MAX_EVENTS:
        raise invalid_field("events", f"at most {contract.MAX_EVENTS} events", "too_long")
    valid: list[Event] = []
    dropped: list[Dropped] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_events):
        checked = contract.validate(raw, index, end_user=end_user, now=now, from_client=True)
        if isinstance(checked, Event) and checked.id in seen:
            checked = Dropped(index, checked.id, "duplicate_id", "id", "repeated in this batch")
        if isinstance(checked, Event):
            seen.add(checked.id)
            valid.append(checked)
        else:
            dropped.append(checked)
    return Batch(valid, dropped)


# --- storage (workers) -----------------------------------------------------------------


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def store(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    raw_events: Sequence[dict[str, Any]],
    now: datetime,
) -> int:
    """Store the events not stored yet (by tenant and event id); returns how many. Invalid
    events (a contract breach by a sender) and rows the database refuses are skipped:
    retrying would not fix them; an unavailable database raises (the task retries)."""
    valid = [
        e
        for i, raw in enumerate(raw_events)
        if isinstance(
            e := contract.validate(raw, i, end_user=None, now=now, from_client=False), Event
        )
    ]
    unique = list({e.id: e for e in valid}.values())
    try:
        inserted = await _insert(session, tenant_id, widget_id, now, unique)
    except DBAPIError as exc:
        if _unavailable(exc):
            raise
        # A row the database refuses (the contract let it through) would fail the batch
        # again on every retry: store the others one by one, and log the refused ones.
        inserted = set()
        for event in unique:
            try:
                inserted |= await _insert(session, tenant_id, widget_id, now, [event])
            except DBAPIError as refused:
                if _unavailable(refused):
                    raise
                log.warning("analytics_event_refused", event_id=event.id, error=str(refused.orig))
    new = [e for e in unique if e.id in inserted]
    for found in _occurrences(widget_id, new):
        group_id = await repository.add_occurrences(session, tenant_id, found, now)
        if group_id is not None:
            data = _group(group_id, found)
            await webhooks.emit(session, tenant_id, "client_error.new_group", data)
    return len(new)


def _group(group_id: uuid.UUID, found: repository.Occurrences) -> dict[str, Any]:
    """A new error group as ``client_error.new_group`` announces it (no end user)."""
    return {
        "group_id": str(group_id),
        "widget_id": str(found.widget_id),
        "kind": found.kind,
        "message": found.message,
        "frame": found.frame,
        "hint": found.hint,
        "first_seen": found.first_seen.isoformat(),
        "count": found.count,
    }


async def _insert(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    now: datetime,
    events: Sequence[Event],
) -> set[str]:
    async with session.begin_nested():
        return await repository.insert_events(session, tenant_id, widget_id, now, events)


def _unavailable(exc: DBAPIError) -> bool:
    """Whether the database failed (retry the task) rather than refused a row."""
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated


def _occurrences(widget_id: uuid.UUID, new: Sequence[Event]) -> list[repository.Occurrences]:
    groups: dict[str, repository.Occurrences] = {}
    for event in sorted((e for e in new if e.name == "client.error"), key=lambda e: e.occurred_at):
        data = event.data
        key = contract.fingerprint(data["kind"], data["message"], data.get("frame"))
        found = groups.get(key)
        sample = {**data, "event_id": event.id, "end_user": event.end_user}
        if found is None:
            found = groups[key] = repository.Occurrences(
                widget_id=widget_id,
                fingerprint=key,
                kind=data["kind"],
                message=contract.normalise_message(data["message"]),
                frame=data.get("frame"),
                hint=data.get("hint"),
                sample=sample,
                first_seen=event.occurred_at,
                last_seen=event.occurred_at,
                count=0,
                end_users=set(),
            )
        groups[key] = found = replace(
            found,
            count=found.count + 1,
            last_seen=event.occurred_at,
            sample=sample,
            hint=data.get("hint"),
        )
        if event.end_user is not None:
            found.end_users.add(event.end_user)
    return list(groups.values())


# --- rollups ---------------------------------------------------------------------------

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
    return [tenant_id for tenant_id, _ in await repository.tenants_with_retention(session)]


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    first = hour_of(start.astimezone(UTC))
    return [first + i * HOUR for i in range(max(0, -(-(end - first) // HOUR)))]


# --- queries ---------------------------------------------------------------------------


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
    """Buckets of an interval in a time zone covering [since, until)."""

    def __init__(self, starts: list[datetime], interval: Interval) -> None:
        self.starts = starts
        """Bucket starts in the time zone, plus the end of the last bucket."""
        self.interval = interval
        self.utc_starts = [s.astimezone(UTC) for s in starts]
        self.aligned_days = interval is Interval.day and all(
            s.utcoffset() == timedelta(0) for s in starts
        )
        """Whether the buckets are UTC days (so the daily rollups answer exactly)."""

    @property
    def period(self) -> RollupPeriod:
        """The rollups that answer for these buckets."""
        return RollupPeriod.day if self.aligned_days else RollupPeriod.hour

    def bucket(self, moment: datetime) -> int | None:
        index = bisect.bisect_right(self.utc_starts, moment) - 1
        return index if 0 <= index < len(self.starts) - 1 else None


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
            start = datetime.combine(day, time(), tz)
            starts.append(start)
            if start >= until or len(starts) > MAX_BUCKETS + 1:
                break
            day += DAY
    if len(starts) > MAX_BUCKETS + 1:
        raise invalid_field("since", f"at most {MAX_BUCKETS} {interval.value}s per series")
    return Window(starts, interval)


async def series(
    session: AsyncSession,
    tenant: Tenant,
    metric: Metric,
    where: Window,
    widget_id: uuid.UUID | None,
) -> list[float | None]:
    """The metric's value per bucket of ``where``."""
    starts = where.utc_starts
    start, end = starts[0], starts[-1]
    values: list[float | None] = [0] * (len(starts) - 1)
    if metric in PERCENTILES:
        column, q = PERCENTILES[metric]
        merged: list[list[int]] = [latency.empty() for _ in values]
        for row_start, counts in await repository.histograms(
            session, tenant.id, where.period, column, start, end, widget_id
        ):
            index = where.bucket(row_start)
            if index is not None:
                latency.add(merged[index], counts)
        return [latency.percentile(counts, q) for counts in merged]
    if metric is Metric.end_users and where.interval is Interval.day and not where.aligned_days:
        users: list[set[str]] = [set() for _ in values]
        async for user, at in repository.end_user_times(session, tenant.id, start, end, widget_id):
            index = where.bucket(at)
            if index is not None:
                users[index].add(user)
        return [len(s) for s in users]
    for row_start, value in await repository.summed(
        session, tenant.id, where.period, start, end, widget_id, [metric.value]
    ):
        index = where.bucket(row_start)
        if index is not None:
            values[index] = (values[index] or 0) + int(value or 0)
    return values


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
    return Funnel(*await repository.funnel_counts(session, tenant.id, since, until, widget_id))


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
    """Percentiles over the hours from ``since``'s to ``until``'s."""
    start, hour = hour_of(since), RollupPeriod.hour
    first_rows = await repository.histograms(
        session, tenant.id, hour, "first_token_ms", start, until, widget_id
    )
    total_rows = await repository.histograms(
        session, tenant.id, hour, "total_ms", start, until, widget_id
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


# --- error groups ----------------------------------------------------------------------


@dataclass(frozen=True)
class GroupView:
    group: ErrorGroup
    affected_end_users: int


@dataclass(frozen=True)
class GroupPage:
    groups: list[GroupView]
    next_cursor: str | None


async def list_error_groups(
    session: AsyncSession,
    tenant: Tenant,
    *,
    status: ErrorStatus | None,
    widget_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> GroupPage:
    before = None if cursor is None else _decode_cursor(cursor)
    rows = await repository.list_error_groups(
        session, tenant.id, status=status, widget_id=widget_id, before=before, limit=limit + 1
    )
    views = [GroupView(g, n) for g, n in rows]
    if len(views) <= limit:
        return GroupPage(views, None)
    last = views[limit - 1].group
    return GroupPage(views[:limit], f"{int(last.last_seen.timestamp() * 1e6)}.{last.id.hex}")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        micros, _, hex_id = cursor.partition(".")
        return datetime.fromtimestamp(int(micros) / 1e6, UTC), uuid.UUID(hex=hex_id)
    except (ValueError, OverflowError, OSError):
        raise invalid_field("cursor", "not a cursor this list gave", "cursor") from None


async def get_error_group(session: AsyncSession, tenant: Tenant, group_id: uuid.UUID) -> GroupView:
    found = await repository.get_error_group(session, tenant.id, group_id)
    if found is None:
        raise NotFound(f"No error group {group_id}.", code="error_group_not_found")
    return GroupView(*found)


async def resolve_error_group(
    session: AsyncSession, tenant: Tenant, actor: Actor, group_id: uuid.UUID
) -> GroupView:
    """Mark the group resolved; an occurrence after now reopens it."""
    view = await get_error_group(session, tenant, group_id)
    if view.group.status is not ErrorStatus.resolved:
        view.group.status = ErrorStatus.resolved
        view.group.resolved_at = utcnow()
        audit.record(
            session,
            actor,
            "error_group.resolved",
            tenant_id=tenant.id,
            target_type="error_group",
            target_id=group_id,
        )
        await session.flush()
    return view


# --- retention and deletion ------------------------------------------------------------


async def purge_expired(session: AsyncSession, tenant_id: uuid.UUID, days: int) -> dict[str, int]:
    """Remove what is older than the tenant's retention: raw events, error groups (with
    their samples) last seen before it, and chat threads, items and attachments (their files
    after the commit). Rollups stay: they hold no personal data."""
    cutoff = utcnow() - timedelta(days=days)
    return {
        "events": await repository.purge_events(session, tenant_id, cutoff),
        "error_groups": await repository.purge_error_groups(session, tenant_id, cutoff),
        "chat": await chat.purge_before(session, tenant_id, cutoff),
    }


async def purge_all(sessionmaker: Sessionmaker) -> dict[str, int]:
    """:func:`purge_expired` for every tenant, each in its own transaction."""
    async with session_scope(sessionmaker) as session:
        await rls.bypass(session, rls.Bypass.sweep)
        tenants = await repository.tenants_with_retention(session)
    totals: dict[str, int] = defaultdict(int)
    for tenant_id, days in tenants:
        async with session_scope(sessionmaker, tenant=tenant_id) as session:
            for kind, count in (await purge_expired(session, tenant_id, days)).items():
                totals[kind] += count
    return dict(totals)


async def delete_end_user(
    session: AsyncSession, tenant: Tenant, actor: Actor, end_user_id: str
) -> dict[str, int]:
    """Remove one end user's data from the tenant, and record that in the audit log."""
    removed = {
        "events": await repository.delete_end_user_events(session, tenant.id, end_user_id),
        "error_occurrences": await repository.forget_error_group_user(
            session, tenant.id, end_user_id
        ),
        "chat": await chat.delete_end_user_data(session, tenant.id, end_user_id),
    }
    audit.record(
        session,
        actor,
        "analytics.end_user_deleted",
        tenant_id=tenant.id,
        target_type="end_user",
        data={"end_user": end_user_id, "removed": removed},
    )
    return removed


async def retention(session: AsyncSession, tenant: Tenant) -> int:
    return await repository.retention_days(session, tenant.id)


async def set_retention(session: AsyncSession, tenant: Tenant, actor: Actor, days: int) -> int:
    before = await repository.retention_days(session, tenant.id)
    await repository.set_retention_days(session, tenant.id, days)
    audit.record(
        session,
        actor,
        "analytics.retention_changed",
        tenant_id=tenant.id,
        data=audit.changes({"retention_days": before}, {"retention_days": days}),
    )
    return days
