"""Webhook deliveries per second by one worker process (``kithost worker --concurrency 1``):
``DELIVERIES`` events for one endpoint, each signed (Standard Webhooks), POSTed to a
receiver on loopback (answering 200 at once) and logged, on PostgreSQL (a scratch database)
with Redis as the broker. Timed from the commit that sends the tasks to the last delivery
logged.

Then a backlog waiting its turn: ``WAITING`` events for a slow endpoint (a receiver taking
``SLOW_ANSWER_SECONDS`` to answer), which takes one attempt at a time, the others waiting
their turn; the deliver task runs per second a worker (``--concurrency 4``) spends on them
from ``SETTLE_SECONDS`` after they are queued (their first runs past) for
``WINDOW_SECONDS``, read from the worker's own count (``celery inspect stats``), beside the
deliveries made meanwhile.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from celery import Celery
from fastapi import FastAPI
from sqlalchemy import func, select
from tests.webhooks.helpers import Receiver

from bench._common import emit, kithost_env, log, scratch_postgres, service, stop_on_sigterm
from kithost import migrate
from kithost.app import create_app
from kithost.db import session_scope
from kithost.kit.crypto import SecretBox
from kithost.models import DeliveryStatus, Tenant, WebhookDelivery, WebhookEndpoint
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.webhooks import service as webhooks
from kithost.webhooks.service import new_secret
from kithost.worker.app import create_celery

REDIS_URL = "redis://127.0.0.1:6379/0"
DELIVERIES = 1_000
READY_TIMEOUT_SECONDS = 60.0
DONE_TIMEOUT_SECONDS = 300.0
WAITING = 300
SLOW_ANSWER_SECONDS = 2.5
"""Past ``webhooks.delivery.SLOW_SECONDS``: the endpoint stays slow."""
SETTLE_SECONDS = 30.0
WINDOW_SECONDS = 180.0


async def new_endpoint(
    app: FastAPI, settings: Settings, slug: str, url: str, *, slow: bool = False
) -> uuid.UUID:
    """A new tenant's endpoint at ``url`` (``slow``: its last attempt was); its id."""
    async with session_scope(app.state.sessionmaker) as session:
        tenant = Tenant(slug=slug, name=slug)
        session.add(tenant)
        await session.flush()
        endpoint = WebhookEndpoint(
            tenant_id=tenant.id,
            url=url,
            events=["webhook.test"],
            secret=SecretBox(settings.keys()).encrypt(new_secret()),
            slow_since=utcnow() if slow else None,
        )
        session.add(endpoint)
        await session.flush()
        return endpoint.id


async def queue(app: FastAPI, endpoint_id: uuid.UUID, count: int) -> None:
    """Queue ``count`` test events for the endpoint (their tasks sent once committed)."""
    async with session_scope(app.state.sessionmaker) as session:
        endpoint = await session.get_one(WebhookEndpoint, endpoint_id)
        for number in range(count):
            webhooks.queue_delivery(session, endpoint, "webhook.test", {"number": number})


async def delivered(app: FastAPI) -> int:
    counted = select(func.count()).where(WebhookDelivery.status == DeliveryStatus.delivered)
    async with session_scope(app.state.sessionmaker) as session:
        return await session.scalar(counted) or 0


async def deliver_all(settings: Settings, url: str) -> float:
    """Queue the deliveries; seconds until the worker has logged every one delivered."""
    app = create_app(settings)
    endpoint_id = await new_endpoint(app, settings, "bench", url)
    started = time.monotonic()
    await queue(app, endpoint_id, DELIVERIES)
    while time.monotonic() - started < DONE_TIMEOUT_SECONDS:
        if await delivered(app) == DELIVERIES:
            break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError(f"not every delivery went out within {DONE_TIMEOUT_SECONDS:.0f}s")
    elapsed = time.monotonic() - started
    await app.state.engine.dispose()
    return elapsed


def task_runs(celery: Celery) -> int:
    """The deliver task runs the worker has begun so far (its own count)."""
    stats = celery.control.inspect(timeout=10).stats() or {}
    return sum(worker["total"].get("kithost.webhooks.deliver", 0) for worker in stats.values())


async def wait_turns(settings: Settings, celery: Celery, url: str) -> tuple[float, float]:
    """Queue ``WAITING`` deliveries to a slow endpoint; the deliver task runs per second and
    the deliveries per second over the window."""
    app = create_app(settings)
    endpoint_id = await new_endpoint(app, settings, "backlog", url, slow=True)
    await queue(app, endpoint_id, WAITING)
    await asyncio.sleep(SETTLE_SECONDS)
    runs, sent, started = (
        await asyncio.to_thread(task_runs, celery),
        await delivered(app),
        time.monotonic(),
    )
    await asyncio.sleep(WINDOW_SECONDS)
    runs = await asyncio.to_thread(task_runs, celery) - runs
    sent, elapsed = await delivered(app) - sent, time.monotonic() - started
    await app.state.engine.dispose()
    return runs / elapsed, sent / elapsed


def slowly(body: bytes) -> bytes:
    time.sleep(SLOW_ANSWER_SECONDS)
    return b"ok"


def main() -> int:
    stop_on_sigterm()
    with (
        tempfile.TemporaryDirectory(prefix="kithost-bench-webhooks-") as tmp,
        scratch_postgres() as database_url,
        Receiver() as receiver,
    ):
        work = Path(tmp)
        queue = f"bench-{uuid.uuid4().hex[:12]}"
        settings = Settings(
            _env_file=None,
            data_dir=work,
            database_url=database_url,
            broker_url=REDIS_URL,
            task_queue=queue,
        )
        overrides = {"database_url": database_url, "broker_url": REDIS_URL, "task_queue": queue}
        migrate.upgrade(settings)
        argv = [sys.executable, "-m", "kithost", "worker", "--concurrency=1"]
        env = kithost_env(work, **overrides, log_level="WARNING")
        with service("worker", argv, env=env, cwd=work, log_path=work / "worker.log"):
            celery = create_celery(settings)
            celery.send_task("kithost.ping", args=["ready"]).get(timeout=READY_TIMEOUT_SECONDS)
            log(f"the worker answered; sending {DELIVERIES} deliveries")
            elapsed = asyncio.run(deliver_all(settings, receiver.url))
        if len(receiver.received) != DELIVERIES:
            raise RuntimeError(f"the receiver got {len(receiver.received)}")
        note = f"{DELIVERIES} deliveries to a loopback receiver, PostgreSQL + Redis, one process"
        rate = round(DELIVERIES / elapsed, 1)
        emit("webhooks", "deliveries per worker process", rate, "/s", note)

        argv[-1] = "--concurrency=4"
        with (
            Receiver(answer=slowly) as slow,
            service("worker", argv, env=env, cwd=work, log_path=work / "worker-backlog.log"),
        ):
            celery.send_task("kithost.ping", args=["ready"]).get(timeout=READY_TIMEOUT_SECONDS)
            log(f"sending {WAITING} deliveries to a slow endpoint")
            runs, sent = asyncio.run(wait_turns(settings, celery, slow.url))
        note = (
            f"{WAITING} deliveries waiting for a receiver answering in {SLOW_ANSWER_SECONDS:g} s "
            f"(one at a time), {WINDOW_SECONDS:.0f} s from {SETTLE_SECONDS:.0f} s after queueing"
        )
        emit("webhooks", "task runs, a backlog waiting its turn", round(runs, 1), "/s", note)
        emit("webhooks", "deliveries, a backlog waiting its turn", round(sent, 2), "/s", note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
