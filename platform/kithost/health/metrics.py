"""Prometheus metrics: HTTP traffic labelled by route template (never by raw path), and the
platform's own counters. Every label takes a small fixed set of values: never a tenant's,
widget's or user's id.

With ``PROMETHEUS_MULTIPROC_DIR`` set (the chart sets it; ``kithost serve --workers N`` sets it
when unset), every process writes its values to files there and a scrape of any process
reports the sum over all of them (prometheus_client's multiprocess mode). The directory must
exist before prometheus_client is imported (the chart mounts one); a Celery worker's pool
processes are forked, so ``kithost worker`` needs it set in its environment to report them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from celery.signals import task_failure, task_retry, task_success
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "kithost_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "kithost_http_request_duration_seconds",
    "Time to answer an HTTP request, until the response starts.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

SESSION_MINTS = Counter(
    "kithost_session_mints_total",
    "Visitor credentials minted, by widget mode and result (ok or the problem's code).",
    ["mode", "result"],
)
CONFIG_CACHE = Counter(
    "kithost_config_cache_total",
    "Widget config lookups: hit (fresh in memory), revalidated (unchanged in the database), "
    "loaded (new or changed), stale (served old: the database did not answer).",
    ["result"],
)
EVENTS = Counter(
    "kithost_events_total",
    "Analytics events from visitors' pages: accepted (handed to the broker), dropped, or "
    "refusal_dropped (a refused page's report beyond one a minute).",
    ["result"],
)
CHAT_STREAMS = Counter(
    "kithost_chat_streams_total",
    "ChatKit streams ended: completed, failed (error event sent) or disconnected.",
    ["result"],
)
CHAT_STREAM_SECONDS = Histogram(
    "kithost_chat_stream_duration_seconds",
    "A ChatKit stream from the request to its last event.",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
CHAT_OPEN_ANSWERS = Gauge(
    "kithost_chat_open_answers",
    "ChatKit answers streaming now (KITHOST_MAX_OPEN_ANSWERS per process; one more is "
    "refused with 503 server_busy).",
    multiprocess_mode="livesum",
)
CHAT_FIRST_TOKEN_SECONDS = Histogram(
    "kithost_chat_first_token_seconds",
    "From a ChatKit request to the first text the model streams back.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
WORKER_TASKS = Counter(
    "kithost_worker_tasks_total",
    "Celery tasks ended in a worker, by task name and outcome (success, failure, retry).",
    ["task", "outcome"],
)


@contextmanager
def mint_outcome(mode: str) -> Iterator[None]:
    """Count one mint of a ``mode`` widget: ok, or the code of the problem it raised."""
    try:
        yield
    except Exception as exc:
        SESSION_MINTS.labels(mode, getattr(exc, "code", "internal_error")).inc()
        raise
    SESSION_MINTS.labels(mode, "ok").inc()


def prepare_multiprocess_dir(default: Path) -> None:
    """Before a server starts its processes: multiprocess mode in ``PROMETHEUS_MULTIPROC_DIR``
    (``default`` when unset), emptied of a previous run's files."""
    directory = Path(os.environ.setdefault(MULTIPROC_DIR, str(default)))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def registry(*extra: Collector) -> CollectorRegistry:
    """What a scrape reads: this process's metrics or, in multiprocess mode, every
    process's; plus ``extra`` collectors."""
    found = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_DIR):
        MultiProcessCollector(found)  # type: ignore[no-untyped-call]
    else:
        found.register(_Process())
    for collector in extra:
        found.register(collector)
    return found


def exposition(*extra: Collector) -> bytes:
    return generate_latest(registry(*extra))


def count_worker_tasks() -> None:
    """Count the outcome of every task this Celery worker (and its pool) runs."""
    for signal, outcome in (
        (task_success, "success"),
        (task_failure, "failure"),
        (task_retry, "retry"),
    ):
        signal.connect(partial(_count_task, outcome), weak=False)


def _count_task(outcome: str, sender: Any = None, request: Any = None, **_: Any) -> None:
    # task_retry's sender is the request; the others' is the task.
    name = getattr(sender, "name", None) or getattr(request, "task", None) or "unknown"
    WORKER_TASKS.labels(name, outcome).inc()


class _Process(Collector):
    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class _RouteMetrics:
    """The labelled children for one method and route, looked up once (``labels()`` locks)."""

    __slots__ = ("_key", "_requests", "latency")

    def __init__(self, method: str, route: str) -> None:
        self._key = (method, route)
        self.latency = LATENCY.labels(method, route)
        self._requests: dict[int, Counter] = {}

    def count(self, status: int) -> None:
        counter = self._requests.get(status)
        if counter is None:
            counter = self._requests[status] = REQUESTS.labels(*self._key, str(status))
        counter.inc()


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: dict[tuple[str, str], _RouteMetrics] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_and_observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._observe(scope, message["status"], time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, send_and_observe)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        key = (scope["method"], _route(scope))
        metrics = self._routes.get(key)
        if metrics is None:
            metrics = self._routes[key] = _RouteMetrics(*key)
        metrics.latency.observe(seconds)
        metrics.count(status)


def _route(scope: Scope) -> str:
    route: BaseRoute | None = scope.get("route")
    return getattr(route, "path", None) or "<unmatched>"
