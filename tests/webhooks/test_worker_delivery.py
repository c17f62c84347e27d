"""Webhook deliveries by a real ``kithost worker`` process to a real receiver on loopback,
checked with Standard Webhooks' own library: a worker killed (SIGKILL, with its pool) while
the receiver holds the request, then restarted, sends the event once more with the same
``webhook-id``: at least once, never zero. An attempt holding its tenant's slot for slow
endpoints hands the turn on through the broker. The worker reads committed rows, so these
tests commit, in tenants deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from standardwebhooks import Webhook

from kithost.auth.scopes import Scope
from kithost.db import session_scope
from kithost.models import DeliveryStatus, WebhookDelivery
from kithost.settings import Settings
from kithost.webhooks.tasks import deliver
from kithost.worker.enqueue import enqueue
from tests.conftest import operator_sessions
from tests.factories import bare_tenant, client_token
from tests.webhooks.helpers import Receiver, hook_at, pending
from tests.workers import committing_api, kill_worker, own_queue, until, worker_running

pytestmark = pytest.mark.worker
PREFIX = "wh-worker"
VISIBILITY = {"KITHOST_BROKER_VISIBILITY_TIMEOUT_SECONDS": "1"}
"""Redis hands a message a dead worker held to the next one after this long (an hour by
default); the restarted worker starts later than that."""


@pytest.fixture
def hook_settings(settings: Settings, tmp_path: Path) -> Settings:
    return own_queue(settings, "hooks", tmp_path)


@pytest.fixture
async def api(hook_settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx2.AsyncClient]]:
    async with committing_api(hook_settings, PREFIX) as api:
        yield api


async def test_a_worker_killed_mid_delivery_leads_to_one_more_delivery(
    api: tuple[FastAPI, httpx2.AsyncClient], hook_settings: Settings
) -> None:
    app, client = api
    async with session_scope(operator_sessions(app)) as session:
        tenant = await bare_tenant(session, PREFIX)
        admin = await client_token(app, session, tenant, [Scope.webhooks_write])
        hooks = f"/api/v1/tenants/{tenant.slug}/webhooks"
    with Receiver(hold=True) as receiver:
        body = {"url": receiver.url, "events": ["widget.published"]}
        created = (await client.post(hooks, json=body, headers=admin.headers)).json()
        secret, hook = created["secret"], created["endpoint"]["id"]

        async def arrived() -> bool:
            return receiver.arrived.is_set()

        with worker_running(hook_settings, **VISIBILITY) as worker:
            sent = await client.post(f"{hooks}/{hook}/test", headers=admin.headers)
            assert sent.status_code == 202, sent.text
            await until(arrived)
            kill_worker(worker)
        receiver.hold = False
        receiver.release.set()
        log: list[dict[str, Any]] = []

        async def delivered() -> bool:
            nonlocal log
            listed = await client.get(f"{hooks}/{hook}/deliveries", headers=admin.headers)
            log = listed.json()["deliveries"]
            return [d["status"] for d in log] == ["delivered"]

        with worker_running(hook_settings, **VISIBILITY):
            await until(delivered)
        first, again = receiver.received
    event_id = sent.json()["event_id"]
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == event_id
    for got in (first, again):
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"
    assert (log[0]["attempts"], log[0]["response_status"]) == (1, 200), (
        "the killed attempt never finished; the one after it did"
    )


async def test_a_slow_attempt_ending_hands_the_turn_on_through_the_worker(
    api: tuple[FastAPI, httpx2.AsyncClient], hook_settings: Settings
) -> None:
    """The tenant's oldest delivery waiting for its slow endpoints goes once the attempt
    holding their turn ends, its own task not due yet (here: none at all): the hand-off is
    sent after the attempt's unit of work commits, and the worker runs it."""
    app, _ = api
    with Receiver() as receiver:
        async with session_scope(operator_sessions(app)) as session:
            tenant = await bare_tenant(session, PREFIX)
            waiting = await pending(session, await hook_at(app, session, tenant, receiver.url))
            first = await pending(session, await hook_at(app, session, tenant, receiver.url))
            enqueue(session, deliver, *first[1])

        async def delivered() -> bool:
            async with session_scope(operator_sessions(app)) as session:
                made = await session.get(WebhookDelivery, uuid.UUID(waiting[1][1]))
                return made is not None and made.status is DeliveryStatus.delivered

        with worker_running(hook_settings, **VISIBILITY):
            await until(delivered)
    assert len(receiver.received) == 2
