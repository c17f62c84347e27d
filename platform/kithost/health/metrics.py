"""Prometheus metrics for HTTP traffic, labelled by route template (never by raw path)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
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
