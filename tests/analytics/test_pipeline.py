"""Events through a real ``kithost worker`` process: on Redis (both databases) and on the
embedded broker; duplicates, redeliveries and a worker killed mid-batch.

The worker writes committed rows, so these tests commit too, each in a tenant of its own
that is deleted afterwards (analytics rows cascade with it). One worker, one queue, one
task at a time: a rollup task sent after a batch runs after it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis
from celery import Celery
from fastapi import FastAPI
from sqlalchemy import delete, func, select

from kithost import migrate
from kithost.app import create_app
from kithost.auth.scopes import Scope
from kithost.db import Sessionmaker, session_scope
from kithost.models import AnalyticsEvent, Tenant, Widget
from kithost.settings import Settings
from kithost.worker.app import restore_unacknowledged
from tests.analytics.helpers import (
    SHOP,
    USER,
    client_error,
    conversation,
    event,
    published_widget,
)
from tests.conftest import REDIS_URL, operator_sessions
from tests.factories import Credentials, bare_tenant, client_token
from tests.workers import TIMEOUT, start_worker, stop_worker

pytestmark = pytest.mark.worker

VISIBILITY_TIMEOUT = 2
"""Seconds after which Redis hands a killed worker's message to the next worker."""


@dataclass
class Pipeline:
    settings: Settings
    app: FastAPI
    client: httpx2.AsyncClient

    @property
    def celery(self) -> Celery:
        celery: Celery = self.app.state.celery
        return celery

    @property
    def operator(self) -> Sessionmaker:
        return operator_sessions(self.app)

    async def run(self, task: str) -> Any:
        """Send ``task`` and wait for its result (after everything queued before it)."""
        result = self.celery.send_task(task)
        return await asyncio.to_thread(result.get, timeout=TIMEOUT)

    async def post(
        self, widget: Widget, events: list[dict[str, Any]], end_user: str | None = USER
    ) -> None:
        response = await self.client.post(
            f"/v1/embed/{widget.public_key}/events",
            json={"end_user": end_user, "events": events},
            headers={"Origin": SHOP},
        )
        assert response.status_code == 202, response.text
        assert response.json()["dropped"] == []

    async def token(self, widget: Widget, scopes: list[Scope]) -> Credentials:
        """An API client of the widget's tenant holding ``scopes`` (committed)."""
        async with session_scope(self.operator) as session:
            tenant = await session.get(Tenant, widget.tenant_id)
            assert tenant is not None
            return await client_token(self.app, session, tenant, scopes)

    async def count(self, widget: Widget) -> int:
        async with session_scope(self.operator) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(AnalyticsEvent)
                .where(AnalyticsEvent.tenant_id == widget.tenant_id)
            )
        return int(count or 0)


def worker_env(settings: Settings) -> dict[str, str]:
    return {
        "KITHOST_DATABASE_URL": settings.database,
        "KITHOST_BROKER_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_TIMEOUT),
    }


@asynccontextmanager
async def pipeline_on(settings: Settings) -> AsyncIterator[Pipeline]:
    app = create_app(settings)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Pipeline(settings, app, client)
    await app.state.engine.dispose()


def own_queue(settings: Settings, tmp_path: Path, name: str) -> Settings:
    return settings.model_copy(
        update={
            "task_queue": f"{settings.task_queue}-{name}-{secrets.token_hex(3)}",
            "data_dir": tmp_path,
        }
    )


@pytest.fixture(scope="module")
def worker_settings(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings of a worker on Redis for this module's tests (its queue, the test database)."""
    own = own_queue(settings, tmp_path_factory.mktemp("pipeline"), "pipeline")
    process = start_worker(own, **worker_env(own))
    yield own
    stop_worker(process)
    redis.Redis.from_url(REDIS_URL).delete(own.task_queue)


@pytest.fixture
async def pipeline(worker_settings: Settings) -> AsyncIterator[Pipeline]:
    async with pipeline_on(worker_settings) as pipeline:
        yield pipeline


@pytest.fixture
async def tenants(pipeline: Pipeline) -> AsyncIterator[Callable[[], Any]]:
    """Make committed published widgets of fresh tenants; delete those tenants afterwards."""
    made: list[Widget] = []

    async def make() -> tuple[Widget, Credentials]:
        async with session_scope(pipeline.operator) as session:
            widget = await published_widget(session, await bare_tenant(session))
        made.append(widget)
        return widget, await pipeline.token(widget, [Scope.analytics_read])

    yield make
    async with session_scope(pipeline.operator) as session:
        await session.execute(delete(Tenant).where(Tenant.id.in_([w.tenant_id for w in made])))


async def slug_of(pipeline: Pipeline, widget: Widget) -> str:
    async with session_scope(pipeline.operator) as session:
        tenant = await session.get(Tenant, widget.tenant_id)
        assert tenant is not None
        return tenant.slug


async def series_total(
    pipeline: Pipeline, widget: Widget, creds: Credentials, metric: str
) -> float:
    slug = await slug_of(pipeline, widget)
    response = await pipeline.client.get(
        f"/api/v1/tenants/{slug}/analytics/series", params={"metric": metric}, headers=creds.headers
    )
    assert response.status_code == 200, response.text
    return sum(p["value"] or 0 for p in response.json()["points"])


async def test_events_in_rollups_and_error_groups_out(pipeline: Pipeline, tenants: Any) -> None:
    widget, creds = await tenants()
    loads = [event("loader.loaded") for _ in range(30)]
    await pipeline.post(widget, loads)
    await pipeline.post(
        widget,
        [
            event("widget.opened"),
            client_error("Timeout after 30s"),
            client_error("Timeout after 5s"),
        ],
    )
    ingest = "kithost.analytics.ingest"
    facts = conversation("th_1", 3, positive=True)
    pipeline.celery.send_task(ingest, args=[str(widget.tenant_id), str(widget.id), facts])
    assert await pipeline.run("kithost.analytics.rollup") >= 1

    assert await series_total(pipeline, widget, creds, "loads") == 30
    assert await series_total(pipeline, widget, creds, "messages") == 3
    assert await series_total(pipeline, widget, creds, "feedback_up") == 1
    assert await series_total(pipeline, widget, creds, "client_errors") == 2
    slug = await slug_of(pipeline, widget)
    groups = (
        await pipeline.client.get(f"/api/v1/tenants/{slug}/analytics/errors", headers=creds.headers)
    ).json()
    assert [(g["message"], g["count"], g["affected_end_users"]) for g in groups["groups"]] == [
        ("Timeout after <?>s", 2, 1)
    ]
    funnel = (
        await pipeline.client.get(f"/api/v1/tenants/{slug}/analytics/funnel", headers=creds.headers)
    ).json()
    assert (funnel["loads"], funnel["opens"], funnel["conversations"], funnel["engaged"]) == (
        30,
        1,
        1,
        1,
    )


async def test_duplicates_and_redeliveries_count_once(pipeline: Pipeline, tenants: Any) -> None:
    widget, creds = await tenants()
    batch = [event("loader.loaded") for _ in range(10)]
    await pipeline.post(widget, batch)
    await pipeline.post(widget, batch)  # the loader retried
    await pipeline.post(widget, [*batch[:5], event("loader.loaded")])  # partly new
    args = [str(widget.tenant_id), str(widget.id), [{**e, "end_user": USER} for e in batch]]
    for _ in range(2):  # the broker delivered the task again
        pipeline.celery.send_task("kithost.analytics.ingest", args=args)
    await pipeline.run("kithost.analytics.rollup")
    assert await pipeline.count(widget) == 11
    assert await series_total(pipeline, widget, creds, "loads") == 11


async def test_retention_sweep_in_the_worker_removes_old_rows(
    pipeline: Pipeline, tenants: Any
) -> None:
    widget, _ = await tenants()
    slug = await slug_of(pipeline, widget)
    old = int((time.time() - 5 * 24 * 3600) * 1000)
    await pipeline.post(widget, [event("loader.loaded", time=old), event("loader.loaded")])
    await pipeline.run("kithost.analytics.rollup")
    assert await pipeline.count(widget) == 2
    admin = await pipeline.token(widget, [Scope.members_write, Scope.conversations_write])
    response = await pipeline.client.put(
        f"/api/v1/tenants/{slug}/analytics/settings",
        json={"retention_days": 2},
        headers=admin.headers,
    )
    assert response.status_code == 200
    removed = await pipeline.run("kithost.analytics.purge")
    assert removed["events"] >= 1
    assert {"chat", "session_mints"} <= set(removed)  # the worker has them registered
    assert await pipeline.count(widget) == 1


async def _figures(
    pipeline: Pipeline, widget: Widget, creds: Credentials, hour: datetime
) -> dict[str, float]:
    """The hour's loads, and its UTC day's loads and end users, as the series answer them
    (over the tenant's widgets: the tenant-wide row for end users)."""
    slug = await slug_of(pipeline, widget)
    day = hour.replace(hour=0)
    figures = {}
    for name, metric, interval, start in [
        ("hour loads", "loads", "hour", hour),
        ("day loads", "loads", "day", day),
        ("day end users", "end_users", "day", day),
    ]:
        step = timedelta(hours=1) if interval == "hour" else timedelta(days=1)
        response = await pipeline.client.get(
            f"/api/v1/tenants/{slug}/analytics/series",
            params={
                "metric": metric,
                "interval": interval,
                "since": start.isoformat(),
                "until": (start + step).isoformat(),
            },
            headers=creds.headers,
        )
        assert response.status_code == 200, response.text
        [point] = response.json()["points"]
        figures[name] = point["value"]
    return figures


async def _retention(pipeline: Pipeline, widget: Widget, days: int) -> None:
    admin = await pipeline.token(widget, [Scope.members_write, Scope.conversations_write])
    response = await pipeline.client.put(
        f"/api/v1/tenants/{await slug_of(pipeline, widget)}/analytics/settings",
        json={"retention_days": days},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text


async def _rolled_up_then_purged(
    pipeline: Pipeline, widget: Widget, creds: Credentials, hour: datetime
) -> None:
    """Five visitors' loads in ``hour`` (three days ago), rolled up, then purged by a
    retention of one day: the rollups stay."""
    at = int((hour + timedelta(minutes=30)).timestamp() * 1000)
    for i in range(5):
        await pipeline.post(widget, [event("loader.loaded", time=at + i)], f"a:anon_{i:024d}")
    await pipeline.run("kithost.analytics.rollup")
    expected = {"hour loads": 5, "day loads": 5, "day end users": 5}
    assert await _figures(pipeline, widget, creds, hour) == expected
    await _retention(pipeline, widget, 1)
    assert (await pipeline.run("kithost.analytics.purge"))["events"] >= 5
    assert await pipeline.count(widget) == 0
    assert await _figures(pipeline, widget, creds, hour) == expected


def _three_days_ago() -> datetime:
    return (datetime.now(UTC) - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)


async def test_a_late_event_older_than_the_retention_is_not_stored(
    pipeline: Pipeline, tenants: Any
) -> None:
    """Anyone may post an event dated up to 7 days back: one dated into an hour the retention
    purged is not stored, so the hour and its day keep the figures their rollups had."""
    widget, creds = await tenants()
    hour = _three_days_ago()
    await _rolled_up_then_purged(pipeline, widget, creds, hour)
    late = int((hour + timedelta(minutes=40)).timestamp() * 1000)
    await pipeline.post(widget, [event("loader.loaded", time=late)], "a:anon_" + "l" * 24)
    await pipeline.post(widget, [client_error("Late", frame="late")], "a:anon_" + "l" * 24)
    await pipeline.run("kithost.analytics.rollup")
    assert await pipeline.count(widget) == 1  # the client error, sent now
    assert await _figures(pipeline, widget, creds, hour) == {
        "hour loads": 5,
        "day loads": 5,
        "day end users": 5,
    }


async def test_a_late_event_in_a_purged_hour_never_lowers_its_rollups(
    pipeline: Pipeline, tenants: Any
) -> None:
    """Retention lengthened after a purge: an event dated into the purged hour is within the
    retention again, so it is stored; the hour's and the day's figures, recomputed from the
    raw events left, never drop below what their rollups held."""
    widget, creds = await tenants()
    hour = _three_days_ago()
    await _rolled_up_then_purged(pipeline, widget, creds, hour)
    await _retention(pipeline, widget, 90)
    late = int((hour + timedelta(minutes=40)).timestamp() * 1000)
    await pipeline.post(widget, [event("loader.loaded", time=late)], "a:anon_" + "l" * 24)
    await pipeline.run("kithost.analytics.rollup")
    assert await pipeline.count(widget) == 1
    assert await _figures(pipeline, widget, creds, hour) == {
        "hour loads": 5,
        "day loads": 5,
        "day end users": 5,
    }


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def in_flight(queue: str) -> bool:
    """Whether a worker holds a message of ``queue`` recorded as unacknowledged (kombu's
    Redis transport: the ``unacked`` hash, of [message, exchange, routing key])."""
    held = redis.Redis.from_url(REDIS_URL).hvals("unacked")
    return any(json.loads(entry)[2] == queue for entry in held)


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its pool processes at once: nothing gets to clean up."""
    for pid in [*_children(process.pid), process.pid]:
        os.kill(pid, signal.SIGKILL)
    process.wait()


async def wait_until(check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("broker", ["redis", "embedded"])
async def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    settings: Settings, tmp_path: Path, broker: str
) -> None:
    if broker == "embedded" and settings.database.startswith("postgresql"):
        pytest.skip("the embedded broker goes with the embedded database (SQLite)")
    own = own_queue(settings, tmp_path, "kill")
    if broker == "embedded":
        own = own.model_copy(update={"broker_url": None, "result_backend": None})
        assert own.broker.startswith("sqla+sqlite:///")
    process = start_worker(own, **worker_env(own))
    async with pipeline_on(own) as pipeline:
        async with session_scope(pipeline.operator) as session:
            widget = await published_widget(session, await bare_tenant(session))
        try:
            batches = [[event("loader.loaded") for _ in range(50)] for _ in range(20)]
            for batch in batches:
                await pipeline.post(widget, batch)
            for batch in batches[:5]:  # some again, as a retrying loader would
                await pipeline.post(widget, batch)

            async def started() -> bool:
                stored = await pipeline.count(widget)
                if broker == "embedded" or stored >= 1000:  # (every batch went already)
                    return stored > 0
                return stored > 0 and in_flight(own.task_queue)

            # Mid-batch: a batch stored, and (Redis) the next one taken and recorded as
            # unacknowledged. kombu's Redis transport pops a message, then records it: a
            # worker killed between the two (milliseconds, right after a batch ends) loses
            # it, which no setting closes; what it recorded comes back.
            await wait_until(started, "the worker to store a first batch and take the next")
            kill_hard(process)
            if broker == "embedded":  # the message the killed worker held comes back
                assert restore_unacknowledged(own) >= 1
            # Redis hands the unacknowledged message on once its visibility timeout passed
            # (the embedded broker when the next worker starts).
            await asyncio.sleep(VISIBILITY_TIMEOUT + 0.5)
            process = start_worker(own, **worker_env(own))

            async def all_stored() -> bool:
                return await pipeline.count(widget) >= 1000

            await wait_until(all_stored, "every event")
            await pipeline.run("kithost.analytics.rollup")
            assert await pipeline.count(widget) == 1000
            creds = await pipeline.token(widget, [Scope.analytics_read])
            assert await series_total(pipeline, widget, creds, "loads") == 1000
        finally:
            stop_worker(process)
            redis.Redis.from_url(REDIS_URL).delete(own.task_queue)
            async with session_scope(pipeline.operator) as session:
                await session.execute(delete(Tenant).where(Tenant.id == widget.tenant_id))


async def test_the_embedded_broker_carries_events_too(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, task_queue="embedded", secret_key="test-secret-key")
    assert settings.broker.startswith("sqla+sqlite:///")
    await asyncio.to_thread(migrate.upgrade, settings)
    process = start_worker(settings)
    try:
        async with pipeline_on(settings) as pipeline:
            async with session_scope(pipeline.operator) as session:
                widget = await published_widget(session, await bare_tenant(session))
            creds = await pipeline.token(widget, [Scope.analytics_read])
            await pipeline.post(widget, [event("loader.loaded"), event("loader.loaded")])
            await pipeline.run("kithost.analytics.rollup")
            assert await series_total(pipeline, widget, creds, "loads") == 2
    finally:
        stop_worker(process)
