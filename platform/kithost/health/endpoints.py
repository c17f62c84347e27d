from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Iterable
from functools import lru_cache
from typing import Any, Literal, TypeVar

import structlog
from alembic.script import ScriptDirectory
from celery import Celery
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from kithost.errors import NotFound, ServiceUnavailable
from kithost.health.metrics import exposition
from kithost.migrate import alembic_config
from kithost.state import app_state

log = structlog.get_logger(__name__)

router = APIRouter(tags=["health"])

READY_TIMEOUT_SECONDS = 3
T = TypeVar("T")

_SCHEMA_CURRENT: weakref.WeakSet[AsyncEngine] = weakref.WeakSet()
"""Engines whose database was seen at this release's schema (not read again after)."""


class Health(BaseModel):
    status: Literal["ok"] = "ok"


@router.get("/healthz", summary="The process is up (checks nothing else)")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    summary="The database (at this release's schema) and the broker are reachable",
    responses={
        503: {"description": "A dependency is unreachable, or the schema is not this release's"}
    },
)
async def readyz(request: Request) -> Health:
    state = app_state(request)
    database, broker = await asyncio.gather(
        _within_timeout(_check_database(state.engine)),
        _within_timeout(asyncio.to_thread(_check_broker, state.celery)),
    )
    failed = [name for name, ok in (("database", database), ("broker", broker)) if ok is None]
    if failed:
        raise ServiceUnavailable(f"Unreachable: {', '.join(failed)}.", code="not_ready")
    if not database:
        raise ServiceUnavailable(
            "The database's schema is not this release's: run `kithost migrate`.",
            code="schema_mismatch",
        )
    return Health()


# Uptime checks often ask with HEAD, which FastAPI does not add to GET routes (outside the
# OpenAPI document: the same operations).
for _path, _probe in (("/healthz", healthz), ("/readyz", readyz)):
    router.add_api_route(_path, _probe, methods=["HEAD"], include_in_schema=False)


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


async def _within_timeout(check: Awaitable[T]) -> T | None:
    """What ``check`` returned, or None when it failed or took too long."""
    try:
        return await asyncio.wait_for(check, READY_TIMEOUT_SECONDS)
    except Exception:
        return None


async def _check_database(engine: AsyncEngine) -> bool:
    """Raises when the database is unreachable; else whether its schema is this release's
    (Alembic's revision: read until it matched once, a query in the same connection)."""
    # Outside any transaction: on SQLite a transaction takes the write lock (kithost.db).
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("SELECT 1")
        if engine in _SCHEMA_CURRENT:
            return True
        try:
            result = await autocommit.exec_driver_sql("SELECT version_num FROM alembic_version")
            found = {str(row[0]) for row in result}
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            found = set()  # no alembic_version: never migrated
    if found != code_heads():
        log.warning("schema_mismatch", database=sorted(found), release=sorted(code_heads()))
        return False
    _SCHEMA_CURRENT.add(engine)
    return True


@lru_cache(maxsize=1)
def code_heads() -> frozenset[str]:
    """The Alembic revisions this release's migrations end at (one)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _check_broker(celery: Celery) -> bool:
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=READY_TIMEOUT_SECONDS)
    return True
