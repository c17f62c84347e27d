"""Reports over HTTP: series, funnel, latency and the CSV exports (mounted by
``analytics.endpoints``). A range is [``since``, ``until``) within 2000 to 2100, of one widget
of the tenant or all; the reports count the hours from ``since``'s to ``until``'s (the rollups
hold no finer), so that their figures of one range agree; the events export is exact."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.reports import repository, schemas, service
from kithost.analytics.reports.service import Interval, Metric
from kithost.auth.dependencies import AnalyticsRead
from kithost.db import DbSession, session_scope
from kithost.errors import invalid_field
from kithost.kit.pseudonyms import exported_end_user
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.models import Tenant
from kithost.models.base import utcnow
from kithost.state import AppSettings
from kithost.widgets.service import get_widget

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
DEFAULT_RANGE = {Interval.hour: timedelta(days=1), Interval.day: timedelta(days=7)}

router = APIRouter()


async def _range(
    session: AsyncSession, tenant: Tenant, query: schemas.RangeQuery, interval: Interval
) -> tuple[datetime, datetime, uuid.UUID | None]:
    for name, value in (("since", query.since), ("until", query.until)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise invalid_field(name, f"between {EARLIEST.year} and {LATEST.year}")
    until = query.until or utcnow()
    since = query.since or until - DEFAULT_RANGE[interval]
    if until <= since:
        raise invalid_field("until", "must be after since")
    if query.widget is not None:
        await get_widget(session, tenant, query.widget)
    return since, until, query.widget


@router.get(
    "/series",
    summary="One metric over time",
    description="Buckets of `interval` in `tz` covering [`since`, `until`), from the rollups "
    "(recomputed every minute), counting the hours from `since`'s to `until`'s: a first or "
    "last day bucket counts only its hours in the range, so the buckets add up to the hourly "
    "series, the funnel and latency of the same range. Counts add up; `end_users` is "
    "distinct end users per bucket, "
    "of the widget or, without `widget`, across the tenant's widgets; "
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


@router.get(
    "/widgets",
    summary="One count per widget",
    description="Over the hours from `since`'s to `until`'s (default: the last 7 days), from "
    "the rollups; when both are midnights UTC, over those whole days (the daily rollups: "
    "the quick way for many widgets). For a list of widgets, one request.",
    responses=problems(*TENANT_ERRORS),
)
async def get_widget_totals(
    access: AnalyticsRead, session: DbSession, query: Annotated[schemas.TotalsQuery, Query()]
) -> schemas.WidgetTotals:
    since, until, widget = await _range(session, access.tenant, query, Interval.day)
    found = await service.totals_by_widget(
        session, access.tenant, query.metric, since, until, widget
    )
    return schemas.WidgetTotals(
        metric=query.metric,
        since=since,
        until=until,
        widgets=[schemas.WidgetTotal(widget_id=w, value=v) for w, v in found],
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
    keys = settings.keys()

    async def lines() -> AsyncIterator[str]:
        for line in _csv_lines([["id", "widget_id", "name", "time", "end_user", "data"]]):
            yield line
        async with session_scope(request.app.state.sessionmaker, tenant=tenant_id) as reader:
            async for e in repository.stream_events(reader, tenant_id, since, until, widget):
                end_user = exported_end_user(e.end_user_id, keys) if e.end_user_id else None
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
