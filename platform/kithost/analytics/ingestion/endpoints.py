"""Events in from visitors' pages.

``POST /v1/embed/{pk}/events`` is a hot visitor route (``PathParamsRoute``: no dependency
solving) and touches no database: the widget and its allowed origins come from the config
cache, the batch is validated here and handed to the broker as one ``kithost.analytics.ingest``
task. Origins are checked fail-closed before anything else (403 ``origin_not_allowed``
without CORS headers); Kithost's own origin is allowed too (the framed page ``/w/{pk}``).
One exception, so a tenant learns that a page shows (or tries to show) the widget from an
origin it does not allow: such a page's loader reports ``client.error`` of kind
``config_refused`` by ``sendBeacon``; those events alone are kept (every other event of the
batch is dropped) and the answer carries no CORS headers, so the page reads nothing.
Under overload it answers 429 with ``Retry-After`` (``EventsHandover``): when the process has
``KITHOST_EVENTS_MAX_IN_FLIGHT`` batches under way, or the widget its share of them, so that
one widget's flood is refused before it takes every other widget's (and tenant's) place.
When the broker is unreachable, 503.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from celery import Celery
from fastapi import APIRouter, Request, Response
from kombu.exceptions import KombuError

from kithost.analytics.events import MAX_BODY_BYTES
from kithost.analytics.ingestion import schemas, service
from kithost.analytics.ingestion.service import Batch
from kithost.analytics.ingestion.tasks import ingest
from kithost.errors import KithostError, PayloadTooLarge, RateLimited, ServiceUnavailable
from kithost.health.metrics import EVENTS
from kithost.kit.ratelimit import client_key
from kithost.kit.schemas import problems
from kithost.models.base import utcnow
from kithost.state import AppState, app_state
from kithost.visitor.cache import published_answers
from kithost.visitor.routes import browser_origin, cors_headers, visitor_route
from kithost.visitor.service import Published
from kithost.worker.sender import TaskSender

log = structlog.get_logger(__name__)
ACCEPTED, DROPPED = EVENTS.labels("accepted"), EVENTS.labels("dropped")

EVENTS_PATH = "/v1/embed/{pk}/events"
BROKER_ERRORS = (KombuError, OSError)
"""The broker away: refused connections, and a publish cut off midway (``BatchPublishError``)."""
REFUSED = "config_refused"
REFUSALS_PER_MINUTE = 1
"""Refusals kept per widget, page origin and client address a minute: one tells the tenant;
the rest (a page reloading, or a flood) are only counted (``kithost_events_total``)."""
REFUSED_DROPPED = EVENTS.labels("refusal_dropped")
WIDGETS_IN_FLIGHT = 8
"""Widgets that can each have their whole share of the process's batches under way at once
(``EventsHandover``): with the default ``KITHOST_EVENTS_MAX_IN_FLIGHT`` of 256, 32 each."""


async def post_events(request: Request, pk: str) -> Response:
    origin = browser_origin(request.headers.get("origin"))
    state: AppState = request.app.state
    answers = await published_answers(state, pk)
    published = answers.published
    allowed = answers.admits(origin, state.settings.own_origins)
    cors = cors_headers(origin if allowed else None)
    handover = state.part(EventsHandover)
    try:
        body = await _bounded_body(request)
        with handover.slot(published.widget_id):
            batch = service.parse_batch(body, request.headers.get("content-type"), utcnow())
            if not allowed:
                batch = await _refusal_kept(request, published, origin, batch)
            if batch.events and not published.preview:
                await handover.send(published, batch)
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


async def _refusal_kept(request: Request, published: Published, origin: str, batch: Batch) -> Batch:
    """What a page of a foreign origin may report: that the widget was refused to it, once a
    minute per widget, origin and client address (unauthenticated: any page may send it)."""
    refusals = [e for e in batch.events if e.name == "client.error" and e.data["kind"] == REFUSED]
    if not refusals:
        return Batch([], batch.dropped)
    client = client_key(request.client.host) if request.client else "unknown"
    key = f"refused:{published.widget_id}:{origin}:{client}"
    decision = await app_state(request).rate_limiter.hit(key, REFUSALS_PER_MINUTE, 60)
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


class EventsHandover:
    """How the app hands batches to the broker: as ingest tasks, from one thread publishing
    whatever batches are waiting in one go (``worker.sender.TaskSender``; kombu's work is
    Python holding the GIL, more threads would only contend), shedding load beyond
    ``max_in_flight`` batches under way instead of queueing without bound.

    Once half the places are taken, a widget holding ``max_in_flight // WIDGETS_IN_FLIGHT``
    of them (at least one) gets no more: the batches wait their turn in one queue, so a
    widget flooding the process would otherwise hold every place, and every other widget's
    batch would wait behind its batches or be refused. Its next batch is then refused at
    once (before it is parsed), and ``WIDGETS_IN_FLIGHT`` widgets (fewer only when
    ``max_in_flight`` is lower) can still have their share under way. Below half, any widget
    may take places: one busy site alone is not held back."""

    def __init__(self, celery: Celery, max_in_flight: int) -> None:
        self._sender = TaskSender(celery)
        self._max_in_flight = max_in_flight
        self._busy = max_in_flight // 2
        self._max_per_widget = max(1, max_in_flight // WIDGETS_IN_FLIGHT)
        self.in_flight = 0
        self._widgets: Counter[uuid.UUID] = Counter()
        """Batches under way per widget (only widgets with some)."""

    @contextmanager
    def slot(self, widget_id: uuid.UUID) -> Iterator[None]:
        """A place for one batch of the widget, from its parsing to the broker's answer:
        429 when the process or the widget has all it may have under way."""
        if self.in_flight >= self._max_in_flight:
            raise RateLimited(1, "Too many events right now; send them again shortly.")
        if self.in_flight >= self._busy and self._widgets[widget_id] >= self._max_per_widget:
            raise RateLimited(
                1, "Too many events for this widget right now; send them again shortly."
            )
        self.in_flight += 1
        self._widgets[widget_id] += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._widgets[widget_id] -= 1
            if not self._widgets[widget_id]:
                del self._widgets[widget_id]

    async def send(self, published: Published, batch: Batch) -> None:
        """Send the batch as one ingest task (in a :meth:`slot`): 503 when the broker is
        unreachable."""
        args = [str(published.tenant_id), str(published.widget_id)]
        events = [e.as_task_arg() for e in batch.events]
        try:
            await self._sender.send(
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

    async def aclose(self) -> None:
        await self._sender.aclose()


visitor_router = APIRouter(tags=["embed"])
visitor_route(
    visitor_router,
    EVENTS_PATH,
    post_events,
    method="POST",
    allow_headers="Content-Type",
    preflight_name="preflight_events",
    preflight_summary="CORS preflight for events",
    summary="Send a batch of analytics events and client errors",
    description='Body (`application/json` or `text/plain`, at most 64 KiB): `{"end_user": '
    '<the session\'s end_user or null>, "events": [{"id", "name", "time", "data"}]}`, '
    "at most 50 events. Invalid events are dropped one by one, the rest is kept.",
    status_code=202,
    response_model=schemas.Accepted,
    responses=problems(400, 403, 404, 413, 415, 422, 429, 503),
)
