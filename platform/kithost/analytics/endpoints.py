"""Analytics over HTTP: events in from visitors' pages, reports out to tenants.

``POST /v1/embed/{pk}/events`` is a hot visitor route (``PathParamsRoute``: no dependency
solving) and touches no database: the widget and its allowed origins come from the config
cache, the batch is validated here and handed to the broker as one ``kithost.analytics.ingest``
task. Origins are checked fail-closed before anything else (403 ``origin_not_allowed``
without CORS headers); Kithost's own origin is allowed too (the framed page ``/w/{pk}``).
One exception, so a tenant learns that a page shows (or tries to show) the widget from an
origin it does not allow: such a page's loader reports ``client.error`` of kind
``config_refused`` by ``sendBeacon``; those events alone are kept (every other event of the
batch is dropped) and the answer carries no CORS headers, so the page reads nothing.
Under overload (more than ``KITHOST_EVENTS_MAX_IN_FLIGHT`` batches being handed to the
broker) it answers 429 with ``Retry-After``; when the broker is unreachable, 503.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import StreamingResponse
from kombu.exceptions import KombuError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State

from kithost.analytics import repository, schemas, service
from kithost.analytics.events import MAX_BODY_BYTES
from kithost.analytics.service import Batch, Interval, Metric
from kithost.analytics.tasks import ingest
from kithost.auth.dependencies import AnalyticsRead, MembersWrite, WidgetsWrite
from kithost.db import DbSession, session_scope
from kithost.embed.cache import origin_not_allowed, published_answers, visitor_origin
from kithost.embed.endpoints import PathParamsRoute
from kithost.embed.service import Published
from kithost.errors import (
    KithostError,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    invalid_field,
)
from kithost.health.metrics import EVENTS
from kithost.kit.cors import preflight
from kithost.kit.ratelimit import RateLimiter
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.models import Tenant
from kithost.models.base import utcnow
from kithost.sessions.identity import exported_end_user
from kithost.state import AppSettings
from kithost.widgets.service import get_widget
from kithost.worker.sender import TaskSender

log = structlog.get_logger(__name__)
ACCEPTED, DROPPED = EVENTS.labels("accepted"), EVENTS.labels("dropped")

EVENTS_PATH = "/v1/embed/{pk}/events"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
DEFAULT_RANGE = {Interval.hour: timedelta(days=1), Interval.day: timedelta(days=7)}
BROKER_ERRORS = (KombuError, OSError)
"""The broker away: refused connections, and a publish cut off midway (``BatchPublishError``)."""
REFUSED = "config_refused"
REFUSALS_PER_MINUTE = 1
"""Refusals kept per widget, page origin and client address a minute: one tells the tenant;
the rest (a page reloading, or a flood) are only counted (``kithost_events_total``)."""
REFUSED_DROPPED = EVENTS.labels("refusal_dropped")

# --- ingestion -------------------------------------------------------------------------


async def post_events(request: Request, pk: str) -> Response:
    origin = request.headers.get("origin")
    if origin is None or not origin.startswith(("https://", "http://")):
        raise origin_not_allowed()
    answers = await published_answers(request.app.state, pk)
    published = answers.published
    allowed = answers.admits(origin, request.app.state.settings.base_url)
    cors = {"Vary": "Origin", "Cache-Control": "no-store"}
    if allowed:
        cors["Access-Control-Allow-Origin"] = origin
    try:
        body = await _bounded_body(request)
        batch = service.parse_batch(body, request.headers.get("content-type"), utcnow())
        if not allowed:
            batch = await _refusal_kept(request, published, origin, batch)
        if batch.events and not published.preview:
            await _hand_over(request, published, batch)
    except KithostError as exc:
        exc.headers = {**cors, **exc.headers}
        raise
    ACCEPTED.inc(len(batch.events))
    DROPPED.inc(len(batch.dropped))
    answer = {
        "accepted": len(batch.events),
        "dropped": [d.__dict__ for d in batch.dropped],
    }
    return Response(json.dumps(answer), 202, headers=cors, media_type="application/json")


async def preflight_events(request: Request, pk: str) -> Response:
    origin, _ = await visitor_origin(request, pk)
    return preflight(origin, method="POST", headers="Content-Type")


async def _refusal_kept(request: Request, published: Published, origin: str, batch: Batch) -> Batch:
    """What a page of a foreign origin may report: that the widget was refused to it, once a
    minute per widget, origin and client address (unauthenticated: any page may send it)."""
    refusals = [e for e in batch.events if e.name == "client.error" and e.data["kind"] == REFUSED]
    if not refusals:
        return Batch([], batch.dropped)
    client = request.client.host if request.client else "unknown"
    key = f"refused:{published.widget_id}:{origin}:{client}"
    limiter: RateLimiter = request.app.state.rate_limiter
    decision = await limiter.hit(key, REFUSALS_PER_MINUTE, 60)
    kept = refusals[:1] if decision.allowed else []
    REFUSED_DROPPED.inc(len(refusals) - len(kept))
    return Batch(kept, batch.dropped)


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"A batch has at most {MAX_BODY_BYTES} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"A batch has at most {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def _hand_over(request: Request, published: Published, batch: Batch) -> None:
    """Send the batch as one ingest task; shed load instead of queueing without bound."""
    state = request.app.state
    limit: int = state.settings.events_max_in_flight
    in_flight: int = getattr(state, "events_in_flight", 0)
    if in_flight >= limit:
        raise RateLimited(1, "Too many events right now; send them again shortly.")
    state.events_in_flight = in_flight + 1
    args = [str(published.tenant_id), str(published.widget_id)]
    events = [e.as_task_arg() for e in batch.events]
    try:
        await _sender(state).send(
            ingest.name,
            [*args, events],
            # Celery would repr() every event for monitoring: half the cost of a send.
            argsrepr=f"({args[0]!r}, {args[1]!r}, <{len(events)} events>)",
        )
    except BROKER_ERRORS as exc:
        log.warning("events_broker_unavailable", error=repr(exc))
        raise ServiceUnavailable(
            "Events cannot be queued right now.",
            code="events_unavailable",
            headers={"Retry-After": "5"},
        ) from exc
    finally:
        state.events_in_flight -= 1


def _sender(state: State) -> TaskSender:
    """The app's sender of ingest tasks: one thread publishing whatever batches are waiting
    in one go (kombu's work is Python holding the GIL; more threads would only contend)."""
    sender: TaskSender | None = getattr(state, "events_sender", None)
    if sender is None:
        sender = state.events_sender = TaskSender(state.celery)
    return sender


visitor_router = APIRouter(tags=["embed"])
visitor_router.add_api_route(
    EVENTS_PATH,
    post_events,
    methods=["POST"],
    route_class_override=PathParamsRoute,
    summary="Send a batch of analytics events and client errors",
    description='Body (`application/json` or `text/plain`, at most 64 KiB): `{"end_user": '
    '<the session\'s end_user or null>, "events": [{"id", "name", "time", "data"}]}`, '
    "at most 50 events. Invalid events are dropped one by one, the rest is kept.",
    status_code=202,
    response_model=schemas.Accepted,
    responses=problems(400, 403, 404, 413, 415, 422, 429, 503),
)
visitor_router.add_api_route(
    EVENTS_PATH,
    preflight_events,
    methods=["OPTIONS"],
    route_class_override=PathParamsRoute,
    summary="CORS preflight for events",
    status_code=204,
    response_class=Response,
    responses=problems(403, 404, 503),
)

# --- reports ---------------------------------------------------------------------------

router = APIRouter(prefix="/tenants/{tenant}/analytics", tags=["analytics"])


async def _range(
    session: AsyncSession, tenant: Tenant, query: schemas.RangeQuery, interval: Interval
) -> tuple[datetime, datetime, uuid.UUID | None]:
    for name, value in (("since", query.since), ("until", query.until)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise invalid_field(name, f"between {EARLIEST.year} and {LATEST.year}")
    until = query.until or utcnow()
    since = query.since or until - DEFAULT_RANGE[interval]
    if query.widget is not None:
        await get_widget(session, tenant, query.widget)
    return since, until, query.widget


@router.get(
    "/series",
    summary="One metric over time",
    description="Buckets of `interval` in `tz` covering [`since`, `until`), from the rollups "
    "(recomputed every minute). Counts add up; `end_users` is distinct end users per bucket; "
    "`*_p50`/`*_p95` are response latencies in ms.",
    responses=problems(*TENANT_ERRORS),
)
async def get_series(
    access: AnalyticsRead, session: DbSession, query: Annotated[schemas.SeriesQuery, Query()]
) -> schemas.Series:
    since, until, widget = await _range(session, access.tenant, query, query.interval)
    where = service.window(since, until, query.interval, service.zone(query.tz))
    values = await service.series(session, access.tenant, query.metric, where, widget)
    return schemas.Series(
        metric=query.metric,
        interval=query.interval,
        tz=query.tz,
        widget=widget,
        points=[
            schemas.Point(start=s, value=v) for s, v in zip(where.starts, values, strict=False)
        ],
    )


@router.get("/funnel", summary="The conversion funnel", responses=problems(*TENANT_ERRORS))
async def get_funnel(
    access: AnalyticsRead, session: DbSession, query: Annotated[schemas.RangeQuery, Query()]
) -> schemas.Funnel:
    since, until, widget = await _range(session, access.tenant, query, Interval.day)
    found = await service.funnel(session, access.tenant, since, until, widget)
    return schemas.Funnel(since=since, until=until, **found.__dict__)


@router.get("/latency", summary="Response latency percentiles", responses=problems(*TENANT_ERRORS))
async def get_latency(
    access: AnalyticsRead, session: DbSession, query: Annotated[schemas.RangeQuery, Query()]
) -> schemas.Latency:
    since, until, widget = await _range(session, access.tenant, query, Interval.day)
    found = await service.latencies(session, access.tenant, since, until, widget)
    return schemas.Latency(since=since, until=until, **found.__dict__)


def _group_out(view: service.GroupView) -> schemas.ErrorGroupOut:
    fields = schemas.ErrorGroupOut.model_fields.keys() - {"affected_end_users"}
    return schemas.ErrorGroupOut(
        **{name: getattr(view.group, name) for name in fields},
        affected_end_users=view.affected_end_users,
    )


@router.get(
    "/errors",
    summary="Client error groups, latest occurrence first",
    responses=problems(*TENANT_ERRORS),
)
async def list_error_groups(
    access: AnalyticsRead, session: DbSession, query: Annotated[schemas.ErrorGroupQuery, Query()]
) -> schemas.ErrorGroupPage:
    page = await service.list_error_groups(
        session,
        access.tenant,
        status=query.status,
        widget_id=query.widget,
        cursor=query.cursor,
        limit=query.limit,
    )
    return schemas.ErrorGroupPage(
        groups=[_group_out(v) for v in page.groups], next_cursor=page.next_cursor
    )


@router.get("/errors/{id}", summary="One client error group", responses=problems(*TENANT_ERRORS))
async def get_error_group(
    id: uuid.UUID, access: AnalyticsRead, session: DbSession
) -> schemas.ErrorGroupOut:
    return _group_out(await service.get_error_group(session, access.tenant, id))


@router.post(
    "/errors/{id}/resolve",
    summary="Mark a client error group resolved (a later occurrence reopens it)",
    responses=problems(*TENANT_ERRORS),
)
async def resolve_error_group(
    id: uuid.UUID, access: WidgetsWrite, session: DbSession
) -> schemas.ErrorGroupOut:
    return _group_out(await service.resolve_error_group(session, access.tenant, access.actor, id))


def _csv_lines(rows: Iterable[Iterable[Any]]) -> Iterable[str]:
    for row in rows:
        out = io.StringIO()
        csv.writer(out).writerow([_inert(cell) for cell in row])
        yield out.getvalue()


def _inert(cell: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, quoted (CSV injection)."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


@router.get(
    "/export/series.csv",
    summary="Every metric over time, as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **problems(*TENANT_ERRORS)},
)
async def export_series(
    access: AnalyticsRead,
    session: DbSession,
    query: Annotated[schemas.ExportSeriesQuery, Query()],
) -> StreamingResponse:
    since, until, widget = await _range(session, access.tenant, query, query.interval)
    where = service.window(since, until, query.interval, service.zone(query.tz))
    columns = [await service.series(session, access.tenant, m, where, widget) for m in Metric]
    rows = [
        [start.isoformat(), *("" if c[i] is None else c[i] for c in columns)]
        for i, start in enumerate(where.starts[:-1])
    ]
    header = ["start", *(m.value for m in Metric)]
    return _csv_response(iter(_csv_lines([header, *rows])), "series.csv")


@router.get(
    "/export/events.csv",
    summary="Raw events, as CSV (streamed)",
    responses={200: {"content": {"text/csv": {}}}, **problems(*TENANT_ERRORS)},
    response_class=StreamingResponse,
)
async def export_events(
    request: Request,
    access: AnalyticsRead,
    session: DbSession,
    query: Annotated[schemas.RangeQuery, Query()],
    settings: AppSettings,
) -> StreamingResponse:
    since, until, widget = await _range(session, access.tenant, query, Interval.day)
    tenant_id = access.tenant.id
    key = settings.encryption_keys()[0]

    async def lines() -> AsyncIterator[str]:
        for line in _csv_lines([["id", "widget_id", "name", "time", "end_user", "data"]]):
            yield line
        async with session_scope(request.app.state.sessionmaker, tenant=tenant_id) as reader:
            async for e in repository.stream_events(reader, tenant_id, since, until, widget):
                end_user = exported_end_user(e.end_user_id, key) if e.end_user_id else None
                row = [e.event_id, e.widget_id, e.name, e.occurred_at.isoformat(), end_user]
                for line in _csv_lines([[*row, json.dumps(e.data, separators=(",", ":"))]]):
                    yield line

    return _csv_response(lines(), "events.csv")


def _csv_response(lines: Iterable[str] | AsyncIterator[str], filename: str) -> StreamingResponse:
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/end-user-deletions",
    summary="Delete one end user's data: events, error occurrences, chat threads and files",
    responses=problems(*TENANT_ERRORS),
)
async def delete_end_user(
    access: MembersWrite,
    session: DbSession,
    body: Annotated[schemas.EndUserDeletion, Body()],
) -> schemas.EndUserDeleted:
    removed = await service.delete_end_user(session, access.tenant, access.actor, body.end_user)
    return schemas.EndUserDeleted(end_user=body.end_user, removed=removed)


@router.get("/settings", summary="Analytics settings", responses=problems(*TENANT_ERRORS))
async def get_settings(access: AnalyticsRead, session: DbSession) -> schemas.AnalyticsSettingsOut:
    return schemas.AnalyticsSettingsOut(
        retention_days=await service.retention(session, access.tenant)
    )


@router.put(
    "/settings",
    summary="Change analytics settings (retention of raw events, error samples, chat data)",
    responses=problems(*TENANT_ERRORS),
)
async def put_settings(
    access: MembersWrite,
    session: DbSession,
    body: Annotated[schemas.AnalyticsSettingsUpdate, Body()],
) -> schemas.AnalyticsSettingsOut:
    days = await service.set_retention(session, access.tenant, access.actor, body.retention_days)
    return schemas.AnalyticsSettingsOut(retention_days=days)
