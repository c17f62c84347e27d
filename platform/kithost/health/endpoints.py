from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, Literal

import structlog
from celery import Celery
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from kithost.errors import NotFound, ServiceUnavailable
from kithost.health.metrics import exposition
from kithost.state import app_state

log = structlog.get_logger(__name__)

router = APIRouter(tags=["health"])

READY_TIMEOUT_SECONDS = 3


class Health(BaseModel):
    status: Literal["ok"] = "ok"


@router.get("/healthz", summary="The process is up (checks nothing else)")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    summary="The database and the broker are reachable",
    responses={503: {"description": "A dependency is unreachable"}},
)
async def readyz(request: Request) -> Health:
    state = app_state(request)
    database, broker = await asyncio.gather(
        _within_timeout(_check_database(state.engine)),
        _within_timeout(asyncio.to_thread(_check_broker, state.celery)),
    )
    failed = [name for name, ok in (("database", database), ("broker", broker)) if not ok]
    if failed:
        raise ServiceUnavailable(f"Unreachable: {', '.join(failed)}.", code="not_ready")
    return Health()


@router.get(
    "/metrics",
    summary="Prometheus metrics (404 when KITHOST_METRICS_PORT serves them)",
    response_class=Response,
    responses={404: {"description": "Metrics are served on KITHOST_METRICS_PORT instead"}},
)
async def metrics(request: Request) -> Response:
    state = app_state(request)
    if state.settings.metrics_port is not None:
        raise NotFound("Not Found")
    queue = QueueDepth(state.celery, state.settings.task_queue)
    return Response(await asyncio.to_thread(exposition, queue), media_type=CONTENT_TYPE_LATEST)


class QueueDepth(Collector):
    """Tasks waiting in the broker's queue, asked at each scrape (absent when the broker
    does not answer)."""

    def __init__(self, celery: Celery, queue: str) -> None:
        self.celery = celery
        self.queue = queue

    def collect(self) -> Iterable[Metric]:
        try:
            with self.celery.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=READY_TIMEOUT_SECONDS)
                channel: Any = connection.default_channel
                _, depth, _ = channel.queue_declare(self.queue, passive=True)
        except Exception as exc:
            log.warning("queue_depth_unavailable", error=repr(exc))
            return []
        gauge = GaugeMetricFamily(
            "kithost_broker_queue_depth", "Tasks waiting in the broker's queue.", labels=["queue"]
        )
        gauge.add_metric([self.queue], depth)
        return [gauge]


async def _within_timeout(check: Awaitable[None]) -> bool:
    try:
        await asyncio.wait_for(check, READY_TIMEOUT_SECONDS)
    except Exception:
        return False
    return True


async def _check_database(engine: AsyncEngine) -> None:
    # Outside any transaction: on SQLite a transaction takes the write lock (kithost.db).
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("SELECT 1")


def _check_broker(celery: Celery) -> None:
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=READY_TIMEOUT_SECONDS)
