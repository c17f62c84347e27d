"""Events in, in domain terms.

- The API turns a body into a :class:`Batch` (:func:`parse_batch`) without any database.
- Workers :func:`store` events idempotently: only events inserted now count into error
  groups and mark their hour for the rollup, so a redelivered batch changes nothing.
- An event dated before the tenant's retention cutoff is not stored (the contract accepts
  events up to :data:`~kithost.analytics.events.MAX_AGE` old, longer than a retention may
  be): the purge has taken that time's raw events, so it could count nowhere honestly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics import events as contract
from kithost.analytics.errors import service as errors
from kithost.analytics.events import Dropped, Event
from kithost.analytics.ingestion import repository
from kithost.analytics.retention import repository as retention
from kithost.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, invalid_field
from kithost.models.analytics_settings import MIN_RETENTION_DAYS

log = structlog.get_logger(__name__)


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


async def store(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    raw_events: Sequence[dict[str, Any]],
    now: datetime,
) -> int:
    """Store the events not stored yet (by tenant and event id); returns how many. Invalid
    events (a contract breach by a sender), events dated before the tenant's retention
    cutoff and rows the database refuses are skipped: retrying would not fix them; an
    unavailable database raises (the task retries)."""
    valid = [
        e
        for i, raw in enumerate(raw_events)
        if isinstance(
            e := contract.validate(raw, i, end_user=None, now=now, from_client=False), Event
        )
    ]
    unique = await _within_retention(session, tenant_id, now, {e.id: e for e in valid}.values())
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
    await errors.count_occurrences(session, tenant_id, widget_id, new, now)
    return len(new)


async def _within_retention(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime, events: Iterable[Event]
) -> list[Event]:
    """``events`` less those dated before the tenant's retention cutoff (read only when one is
    older than the shortest retention: most batches hold only recent events)."""
    events = list(events)
    if all(e.occurred_at >= now - timedelta(days=MIN_RETENTION_DAYS) for e in events):
        return events
    cutoff = now - timedelta(days=await retention.retention_days(session, tenant_id))
    kept = [e for e in events if e.occurred_at >= cutoff]
    if len(kept) < len(events):
        log.info(
            "analytics_events_expired", tenant_id=str(tenant_id), count=len(events) - len(kept)
        )
    return kept


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
