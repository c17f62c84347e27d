"""Webhook deliveries per second by one worker process (``kithost worker --concurrency 1``):
``DELIVERIES`` events for one endpoint, each signed (Standard Webhooks), POSTed to a
receiver on loopback (answering 200 at once) and logged, on PostgreSQL (a scratch database)
with Redis as the broker. Timed from the commit that sends the tasks to the last delivery
logged.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select
from tests.webhooks.helpers import Receiver

from bench._common import emit, kithost_env, log, scratch_postgres, service, stop_on_sigterm
from kithost import migrate
from kithost.app import create_app
from kithost.db import session_scope
from kithost.kit.crypto import SecretBox
from kithost.models import DeliveryStatus, Tenant, WebhookDelivery, WebhookEndpoint
from kithost.settings import Settings
from kithost.webhooks import service as webhooks
from kithost.webhooks.service import new_secret
from kithost.worker.app import create_celery

REDIS_URL = "redis://127.0.0.1:6379/0"
DELIVERIES = 1_000
READY_TIMEOUT_SECONDS = 60.0
DONE_TIMEOUT_SECONDS = 300.0


async def deliver_all(settings: Settings, url: str) -> float:
    """Queue the deliveries; seconds until the worker has logged every one delivered."""
    app = create_app(settings)
    async with session_scope(app.state.sessionmaker) as session:
        tenant = Tenant(slug="bench", name="Bench")
        session.add(tenant)
        await session.flush()
        endpoint = WebhookEndpoint(
            tenant_id=tenant.id,
            url=url,
            events=["webhook.test"],
            secret=SecretBox(settings.keys()).encrypt(new_secret()),
        )
        session.add(endpoint)
        await session.flush()
        endpoint_id = endpoint.id
    started = time.monotonic()
    async with session_scope(app.state.sessionmaker) as session:
        endpoint = await session.get_one(WebhookEndpoint, endpoint_id)
        for number in range(DELIVERIES):
            webhooks.queue_delivery(session, endpoint, "webhook.test", {"number": number})
    counted = select(func.count()).where(WebhookDelivery.status == DeliveryStatus.delivered)
    while time.monotonic() - started < DONE_TIMEOUT_SECONDS:
        async with session_scope(app.state.sessionmaker) as session:
            if await session.scalar(counted) == DELIVERIES:
                break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError(f"not every delivery went out within {DONE_TIMEOUT_SECONDS:.0f}s")
    elapsed = time.monotonic() - started
    await app.state.engine.dispose()
    return elapsed


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
    emit("webhooks", "deliveries per worker process", round(DELIVERIES / elapsed, 1), "/s", note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
