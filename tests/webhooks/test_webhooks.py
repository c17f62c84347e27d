"""Webhooks over REST and to a real receiver on loopback: the secret shown once; deliveries
signed so Standard Webhooks' own library verifies them; failures retried and logged, an
endpoint failing for a day disabled (audited); replay keeps the event id; events come from
the domains (a publish); other tenants and lesser roles see nothing."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest
from celery.exceptions import Retry
from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook, WebhookVerificationError

from kithost.analytics.ingestion import service as ingestion
from kithost.analytics.ingestion.tasks import ingest
from kithost.conversations.idle import announce_idle
from kithost.db import session_scope
from kithost.kit.outbound import OutboundPolicy
from kithost.models import (
    ChatThread,
    DeliveryStatus,
    Role,
    Tenant,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookIdleMark,
    WebhookTenantSlot,
)
from kithost.models.base import utcnow
from kithost.webhooks import delivery, tasks
from kithost.webhooks.tasks import deliver
from kithost.widgets import preview
from kithost.worker import database
from tests.analytics.helpers import SHOP, USER, client_error, published_widget
from tests.api.helpers import audit_actions
from tests.chat.helpers import deltas, make_chat_widget, thread_of, visitor
from tests.conversations.helpers import conversation
from tests.factories import Credentials, login, make_member, make_tenant
from tests.fakes.openai_server import FakeOpenAI
from tests.visitor.helpers import ORIGIN
from tests.webhooks.helpers import (
    Receiver,
    attempt,
    chat_tenant_with_hook,
    hook_at,
    pending,
    receiver,
    run_deliveries,
    sent,
)
from tests.widgets.previews import maker

__all__ = ["receiver", "sent"]  # the fixtures

WEBHOOKS = "/api/v1/tenants/acme/webhooks"


async def owner_of_acme(app: FastAPI, db: AsyncSession) -> Credentials:
    tenant = await make_tenant(db, "acme")
    return await login(app, db, await make_member(db, tenant, Role.owner))


async def endpoint(
    client: httpx2.AsyncClient, owner: Credentials, url: str, events: list[str]
) -> dict[str, Any]:
    created = await client.post(
        WEBHOOKS, json={"url": url, "events": events}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_a_test_event_arrives_signed_the_standard_webhooks_way(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    owner = await owner_of_acme(app, db)
    created = await endpoint(client, owner, receiver.url, ["widget.published"])
    secret, hook = created["secret"], created["endpoint"]
    assert secret.startswith("whsec_")
    listed = await client.get(WEBHOOKS, headers=owner.headers)
    assert secret not in listed.text
    stored = await db.get(WebhookEndpoint, uuid.UUID(hook["id"]))
    assert stored is not None
    assert secret not in stored.secret, "encrypted at rest"

    test = await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)
    assert test.status_code == 202, test.text
    assert await run_deliveries(app, sent) == [True]
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "webhook.test"
    assert got.headers["webhook-id"] == test.json()["event_id"]

    log = (await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)).json()[
        "deliveries"
    ]
    assert [(d["status"], d["attempts"], d["response_status"]) for d in log] == [
        ("delivered", 1, 200)
    ]
    assert log[0]["latency_ms"] >= 0


async def refused_test_delivery(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> tuple[Credentials, dict[str, Any], dict[str, Any], tuple[str, list[Any]]]:
    """acme's owner, an endpoint and its test delivery, attempted once and refused (500):
    (owner, endpoint, delivery, its task)."""
    owner = await owner_of_acme(app, db)
    hook = (await endpoint(client, owner, receiver.url, ["widget.published"]))["endpoint"]
    receiver.status = 500
    made = (await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)).json()
    [task] = sent
    sent.clear()
    assert await run_deliveries(app, [task]) == [False]
    return owner, hook, made, task


async def test_failures_are_retried_logged_and_a_day_of_them_disables_the_endpoint(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    owner, hook, first, task = await refused_test_delivery(client, app, db, receiver, sent)
    [entry] = (
        await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)
    ).json()["deliveries"]
    assert (entry["status"], entry["attempts"], entry["response_status"]) == ("pending", 1, 500)
    assert len(entry["response_snippet"]) <= 500

    stored = await db.get(WebhookEndpoint, uuid.UUID(hook["id"]))
    assert stored is not None
    assert stored.failing_since is not None
    stored.failing_since = utcnow() - timedelta(days=1, minutes=1)  # a day of failures
    stored.next_attempt_at = utcnow()  # and its rest over
    await db.flush()
    assert await run_deliveries(app, [task]) == [False]
    shown = (await client.get(WEBHOOKS, headers=owner.headers)).json()
    assert shown[0]["enabled"] is False
    assert "webhook.disabled" in await audit_actions(db, stored.tenant_id)

    receiver.status = 200
    enabled = await client.patch(
        f"{WEBHOOKS}/{hook['id']}", json={"enabled": True}, headers=owner.headers
    )
    assert enabled.json()["enabled"] is True
    replayed = await client.post(
        f"{WEBHOOKS}/{hook['id']}/deliveries/{first['id']}/replay", headers=owner.headers
    )
    assert replayed.status_code == 202
    assert replayed.json()["event_id"] == first["event_id"]
    assert await run_deliveries(app, sent) == [True]
    assert receiver.received[-1].headers["webhook-id"] == first["event_id"]


async def test_a_failing_endpoint_rests_the_longer_the_longer_it_fails(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    """A receiver failing every delivery took an attempt of each, each holding a worker up
    to its deadline, for a day: the endpoint now rests after a failed attempt (as long as it
    has been failing, 30 s to an hour), and deliveries coming meanwhile wait, unsent."""
    owner, hook, _, task = await refused_test_delivery(client, app, db, receiver, sent)
    stored = await db.get(WebhookEndpoint, uuid.UUID(hook["id"]))
    assert stored is not None
    assert stored.failing_since is not None
    assert stored.next_attempt_at is not None
    rest = stored.next_attempt_at - stored.failing_since
    assert timedelta(seconds=30) <= rest < timedelta(seconds=40)
    shown = (await client.get(WEBHOOKS, headers=owner.headers)).json()[0]
    assert datetime.fromisoformat(shown["next_attempt_at"]) == stored.next_attempt_at

    resting = await attempt(app, task)  # the retry, come early
    assert (resting.delivered, resting.retry) == (False, True)
    assert resting.wait_seconds is not None
    assert 20 < resting.wait_seconds <= 40
    assert len(receiver.received) == 1  # nothing sent

    for failing_for, rested in ((timedelta(minutes=10), 600), (timedelta(hours=5), 3600)):
        stored.failing_since = utcnow() - failing_for
        stored.next_attempt_at = utcnow()  # its rest over
        await db.flush()
        before = utcnow()
        assert (await attempt(app, task)).retry is True
        await db.refresh(stored)
        assert stored.next_attempt_at is not None
        waits = (stored.next_attempt_at - before).total_seconds()
        assert rested <= waits < rested + 10
    assert len(receiver.received) == 3

    receiver.status = 200  # mended: the staff's test goes at once, and ends the rest
    await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)
    assert await run_deliveries(app, sent) == [True]
    shown = (await client.get(WEBHOOKS, headers=owner.headers)).json()[0]
    assert (shown["failing_since"], shown["next_attempt_at"]) == (None, None)


async def test_a_failing_endpoint_takes_one_attempt_at_a_time(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    owner, hook, made, task = await refused_test_delivery(client, app, db, receiver, sent)
    replayed = await client.post(
        f"{WEBHOOKS}/{hook['id']}/deliveries/{made['id']}/replay", headers=owner.headers
    )
    assert replayed.status_code == 202
    [again] = sent
    receiver.hold, receiver.status = True, 200
    receiver.arrived.clear()
    held = asyncio.create_task(attempt(app, task))
    try:
        assert await asyncio.to_thread(receiver.arrived.wait, 10)
        waiting = await attempt(app, again)  # while the first is under way
        assert (waiting.delivered, waiting.retry) == (False, True)
        assert waiting.wait_seconds is not None
        assert 0 < waiting.wait_seconds <= delivery.CLAIM.total_seconds()
        assert len(receiver.received) == 2  # the refused one, the one held
    finally:
        receiver.release.set()
    assert (await held).delivered is True
    assert (await attempt(app, again)).delivered is True  # the endpoint well again


SLOW = 0.3
"""``delivery.SLOW_SECONDS`` in the tests of slow endpoints: an attempt held this long is slow."""


def slowly(body: bytes) -> bytes:
    """An answer as slow as keeps its endpoint slow (``Receiver.answer``)."""
    threading.Event().wait(2 * SLOW)
    return b"ok"


async def slow_endpoint_tests(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    sent: list[tuple[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
    receiver: Receiver,
    count: int,
) -> tuple[Credentials, dict[str, Any], list[tuple[str, list[Any]]]]:
    """acme's owner, an endpoint at ``receiver`` and the tasks of ``count`` test deliveries
    to it, not attempted; attempts longer than ``SLOW`` are slow."""
    monkeypatch.setattr(delivery, "SLOW_SECONDS", SLOW)
    owner = await owner_of_acme(app, db)
    hook = (await endpoint(client, owner, receiver.url, ["widget.published"]))["endpoint"]
    for _ in range(count):
        made = await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)
        assert made.status_code == 202, made.text
    tasks = [task for task in sent if task[0] == deliver.name]
    sent.clear()
    return owner, hook, tasks


async def arrived(receiver: Receiver, count: int) -> None:
    """Wait until ``receiver`` has had ``count`` requests."""
    assert await asyncio.to_thread(receiver.has_received, count)


async def waits_its_turn(app: FastAPI, task: tuple[str, list[Any]]) -> None:
    """Attempt ``task`` while another attempt holds its endpoint or its tenant's slot: it is
    not sent (sent, it would wait at the receiver) and comes back only after the backstop
    (``TURN_BACKSTOP``), the attempt under way handing the turn on when it ends: looking
    again at the hold's deadline (``CLAIM``), a thousand waiting took some 50 task runs a
    second for one delivery every few seconds."""
    async with asyncio.timeout(5):
        outcome = await attempt(app, task)
    assert (outcome.delivered, outcome.retry) == (False, True)
    assert outcome.wait_seconds == delivery.TURN_BACKSTOP.total_seconds()


async def test_a_slow_endpoint_takes_one_attempt_at_a_time_until_one_is_fast(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A healthy receiver answering each delivery in 9 s held a worker for each of them,
    however many came at once: a tenant sending many events took every worker, delaying
    every other tenant's deliveries and every other task. An endpoint whose last attempt was
    slow takes one attempt at a time (the others wait, unsent and not counted), the next one
    as soon as the one under way ends; a fast attempt gives it its concurrency back."""
    owner, hook, tasks = await slow_endpoint_tests(client, app, db, sent, monkeypatch, receiver, 5)
    first, held, waiting, *fast = tasks
    gates = receiver.gates = {n: threading.Event() for n in (1, 2, 4, 5)}  # by arrival
    slow = asyncio.create_task(attempt(app, first))
    await arrived(receiver, 1)
    await asyncio.sleep(SLOW)
    gates[1].set()
    assert (await slow).delivered is True
    shown = (await client.get(WEBHOOKS, headers=owner.headers)).json()[0]
    assert shown["slow_since"] is not None
    assert (shown["failing_since"], shown["next_attempt_at"]) == (None, None)

    receiver.most_in_flight = 0
    under_way = asyncio.create_task(attempt(app, held))
    await arrived(receiver, 2)
    await waits_its_turn(app, waiting)
    await asyncio.sleep(SLOW)  # this attempt is slow too
    gates[2].set()
    assert (await under_way).delivered is True
    assert (receiver.most_in_flight, len(receiver.received)) == (1, 2)
    log = (await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)).json()
    states = {d["id"]: (d["status"], d["attempts"]) for d in log["deliveries"]}
    assert states[waiting[1][1]] == ("pending", 0)

    # The endpoint answers fast again: the waiting delivery goes at once (no rest after a
    # success), and the endpoint is no longer slow.
    assert (await attempt(app, waiting)).delivered is True
    shown = (await client.get(WEBHOOKS, headers=owner.headers)).json()[0]
    assert (shown["slow_since"], shown["next_attempt_at"]) == (None, None)

    under_way = asyncio.create_task(attempt(app, fast[0]))
    await arrived(receiver, 4)
    beside = asyncio.create_task(attempt(app, fast[1]))
    await arrived(receiver, 5)
    assert receiver.in_flight == 2
    gates[4].set()
    assert (await under_way).delivered is True
    gates[5].set()
    assert (await beside).delivered is True


async def test_an_attempt_begun_before_its_endpoint_was_slow_leaves_the_hold_of_a_later_one(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attempts begun while the endpoint was fast hold nothing. One of them ending while an
    attempt holds the endpoint, slow meanwhile, must not end that hold: else the attempts
    under way when it turned slow (as many as the workers, under a flood) would each let
    another go, and as many would go on at once."""
    _, hook, tasks = await slow_endpoint_tests(client, app, db, sent, monkeypatch, receiver, 3)
    early, holding, waiting = tasks
    gates = receiver.gates = {n: threading.Event() for n in (1, 2)}  # by arrival
    begun = asyncio.create_task(attempt(app, early))
    await arrived(receiver, 1)
    stored = await db.get(WebhookEndpoint, uuid.UUID(hook["id"]))
    assert stored is not None
    stored.slow_since = utcnow()  # the endpoint turns slow
    await db.flush()
    holds = asyncio.create_task(attempt(app, holding))
    await arrived(receiver, 2)
    await asyncio.sleep(SLOW)  # the early attempt is slow too
    gates[1].set()
    assert (await begun).delivered is True
    await waits_its_turn(app, waiting)
    assert len(receiver.received) == 2
    gates[2].set()
    assert (await holds).delivered is True
    assert (await attempt(app, waiting)).delivered is True
    assert receiver.most_in_flight == 2  # the early one and the holding one


async def test_a_tenants_slow_endpoints_take_one_attempt_at_a_time_all_together(
    app: FastAPI, db: AsyncSession, receiver: Receiver
) -> None:
    """A tenant may have any number of endpoints, and each slow one took its own attempt at
    a time: a tenant with many slow receivers held as many workers at once, each up to the
    deadline, starving every other tenant's deliveries and tasks. Its slow endpoints take
    one attempt at a time all together: one waiting its turn is not sent, holds nothing
    (not even its endpoint) and goes as soon as the turn is free; the tenant's fast
    endpoints, and other tenants' slow ones, go beside them."""
    acme, globex = await make_tenant(db, "acme"), await make_tenant(db, "globex")
    first = await pending(db, await hook_at(app, db, acme, f"{receiver.url}?1"))
    other = await hook_at(app, db, acme, f"{receiver.url}?2")
    second = await pending(db, other)
    fast = await pending(db, await hook_at(app, db, acme, f"{receiver.url}?3", slow=False))
    theirs = await pending(db, await hook_at(app, db, globex, f"{receiver.url}?4"))
    gates = receiver.gates = {n: threading.Event() for n in (1, 3)}  # by arrival
    under_way = asyncio.create_task(attempt(app, first))
    await arrived(receiver, 1)
    await waits_its_turn(app, second)
    await db.refresh(other)
    assert other.next_attempt_at is None, "the endpoint waiting its turn is not held"
    assert (await attempt(app, fast)).delivered is True
    beside = asyncio.create_task(attempt(app, theirs))
    await arrived(receiver, 3)
    assert (receiver.in_flight, len(receiver.received)) == (2, 3)
    gates[1].set()
    assert (await under_way).delivered is True
    assert (await attempt(app, second)).delivered is True
    gates[3].set()
    assert (await beside).delivered is True


async def test_an_endpoint_waiting_for_another_slow_endpoints_attempt_says_so(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, receiver: Receiver
) -> None:
    """A slow endpoint whose deliveries waited for an attempt to another of the tenant's
    slow endpoints was shown with ``next_attempt_at: null`` and nothing saying why: its
    ``waiting_turn`` says so while that attempt is under way; not the endpoint under way's,
    a fast one's, nor a resting one's (its ``next_attempt_at`` says when)."""
    acme = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, acme, Role.owner))
    under_way = await hook_at(app, db, acme, f"{receiver.url}?1")
    waiting = await hook_at(app, db, acme, f"{receiver.url}?2")
    fast = await hook_at(app, db, acme, f"{receiver.url}?3", slow=False)
    resting = await hook_at(app, db, acme, f"{receiver.url}?4")
    resting.failing_since, resting.next_attempt_at = utcnow(), utcnow() + timedelta(minutes=1)
    task = await pending(db, under_way)

    async def waiting_turn() -> dict[str, bool]:
        listed = await client.get(WEBHOOKS, headers=owner.headers)
        return {e["url"]: e["waiting_turn"] for e in listed.json()}

    receiver.gates = {1: threading.Event()}
    attempting = asyncio.create_task(attempt(app, task))
    await arrived(receiver, 1)
    assert await waiting_turn() == {
        under_way.url: False,
        waiting.url: True,
        fast.url: False,
        resting.url: False,
    }
    changed = await client.patch(
        f"{WEBHOOKS}/{waiting.id}", json={"description": "CRM"}, headers=owner.headers
    )
    assert (changed.json()["waiting_turn"], changed.json()["next_attempt_at"]) == (True, None)
    receiver.gates[1].set()
    assert (await attempting).delivered is True
    assert not any((await waiting_turn()).values())


async def test_a_slow_endpoint_resting_after_a_failure_waits_for_its_rest_not_its_turn(
    app: FastAPI, db: AsyncSession, receiver: Receiver
) -> None:
    """A slow endpoint that failed rests, and its deliveries wait the rest in full, as a
    failing endpoint's do. Its rest over, it waits its turn like any slow endpoint."""
    acme = await make_tenant(db, "acme")
    resting = await hook_at(app, db, acme, f"{receiver.url}?1")
    resting.failing_since, resting.next_attempt_at = utcnow(), utcnow() + timedelta(minutes=1)
    task = await pending(db, resting)
    outcome = await attempt(app, task)
    assert (outcome.delivered, outcome.retry) == (False, True)
    assert outcome.wait_seconds is not None
    assert 50 < outcome.wait_seconds <= 60

    receiver.gates = {1: threading.Event()}
    under_way = asyncio.create_task(
        attempt(app, await pending(db, await hook_at(app, db, acme, f"{receiver.url}?2")))
    )
    await arrived(receiver, 1)
    resting.next_attempt_at = utcnow()  # its rest over
    await db.flush()
    await waits_its_turn(app, task)
    receiver.gates[1].set()
    assert (await under_way).delivered is True
    assert (await attempt(app, task)).delivered is True


async def run_hand_offs(
    app: FastAPI,
    sent: list[tuple[str, list[Any]]],
    before: Mapping[str, Callable[[], Awaitable[None]]] | None = None,
) -> list[str]:
    """Run the hand-offs sent, one at a time, as the worker would, until none is left
    (``before``: what happens before a delivery's hand-off runs, by its id); their
    deliveries' ids, in the order handed."""
    handed: list[str] = []
    while sent:
        [task] = sent
        assert (task[0], task[1][2:]) == (deliver.name, [True])
        sent.clear()
        handed.append(task[1][1])
        if before is not None and task[1][1] in before:
            await before[task[1][1]]()
        await attempt(app, task)
    return handed


async def test_a_slow_attempt_ending_hands_the_turn_to_the_oldest_delivery_waiting_for_it(
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deliveries waiting their turn looked again every 2-3 s: a tenant's backlog of a
    thousand to a slow receiver took some 400 task runs a second from every tenant's workers,
    in no order (the oldest could lose every race for a day). The attempt holding the
    tenant's slot hands it on as it ends, once its unit of work commits: a hand-off task of
    the tenant's oldest delivery to a slow endpoint that may go, whichever endpoint, and so
    on, oldest first. Not to another tenant's, a fast endpoint's (it needs no turn), a
    resting or disabled one's, nor to one already sent."""
    monkeypatch.setattr(delivery, "SLOW_SECONDS", SLOW)

    acme, globex = await make_tenant(db, "acme"), await make_tenant(db, "globex")
    await pending(db, await hook_at(app, db, globex, f"{receiver.url}?theirs"))
    await pending(db, await hook_at(app, db, acme, f"{receiver.url}?fast", slow=False))
    resting = await hook_at(app, db, acme, f"{receiver.url}?resting")
    resting.failing_since, resting.next_attempt_at = utcnow(), utcnow() + timedelta(minutes=1)
    disabled = await hook_at(app, db, acme, f"{receiver.url}?disabled")
    disabled.enabled = False
    await pending(db, resting)
    await pending(db, disabled)
    one = await hook_at(app, db, acme, f"{receiver.url}?1")
    other = await hook_at(app, db, acme, f"{receiver.url}?2")
    first = await pending(db, one)
    older, again, newer = await pending(db, other), await pending(db, one), await pending(db, other)
    receiver.gates = {1: threading.Event()}
    receiver.answer = slowly
    under_way = asyncio.create_task(attempt(app, first))
    await arrived(receiver, 1)
    await waits_its_turn(app, newer)
    assert sent == []
    receiver.gates[1].set()
    assert (await under_way).delivered is True

    handed = await run_hand_offs(app, sent)
    assert handed == [task[1][1] for task in (older, again, newer)]
    assert len(receiver.received) == 4


async def test_a_backlog_waiting_its_turn_drains_in_order_through_hand_offs_alone(
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deliveries waiting their turn come back only after the backstop, so the hand-offs
    alone must drain the backlog. A hand-off whose delivery needed no turn ended there: its
    delivery deleted meanwhile (its conversation deleted), its endpoint disabled or fast
    again; the rest of the backlog then waited for the backstop. It passes the turn on, and
    every delivery goes, oldest first, each once."""
    monkeypatch.setattr(delivery, "SLOW_SECONDS", SLOW)

    acme = await make_tenant(db, "acme")
    one, other, faster, disabled = [
        await hook_at(app, db, acme, f"{receiver.url}?{n}") for n in range(4)
    ]
    first = await pending(db, one)
    backlog = [
        await pending(db, hook) for hook in (other, one, other, faster, disabled, one, other)
    ]
    gone, quick, off = backlog[2], backlog[3], backlog[4]
    receiver.gates = {1: threading.Event()}
    receiver.answer = slowly
    under_way = asyncio.create_task(attempt(app, first))
    await arrived(receiver, 1)
    for task in backlog:
        await waits_its_turn(app, task)
    receiver.gates[1].set()
    assert (await under_way).delivered is True

    async def delete_it() -> None:
        await db.execute(delete(WebhookDelivery).where(WebhookDelivery.id == uuid.UUID(gone[1][1])))

    async def turn_fast() -> None:
        faster.slow_since = None
        await db.flush()

    async def disable() -> None:
        disabled.enabled = False
        await db.flush()

    handed = await run_hand_offs(
        app, sent, {gone[1][1]: delete_it, quick[1][1]: turn_fast, off[1][1]: disable}
    )
    assert handed == [task[1][1] for task in backlog]
    statuses = {
        str(d.id): (d.status, d.event_id)
        for d in await db.scalars(select(WebhookDelivery).execution_options(populate_existing=True))
    }
    assert [statuses.get(task[1][1], (None,))[0] for task in backlog] == [
        *[DeliveryStatus.delivered] * 2,
        None,  # deleted
        DeliveryStatus.delivered,
        DeliveryStatus.failed,  # its endpoint disabled
        *[DeliveryStatus.delivered] * 2,
    ]
    sent_once = [task[1][1] for task in (first, *backlog) if task not in (gone, off)]
    assert [r.headers["webhook-id"] for r in receiver.received] == [
        statuses[delivery_id][1] for delivery_id in sent_once
    ]


async def test_a_turn_lost_with_a_worker_is_taken_by_the_first_delivery_back(
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Waiting deliveries rely on the hand-off; a hand-off lost must not leave them waiting
    for ever. A worker killed mid-attempt holds the tenant's slot to its deadline and hands
    nothing on; a hand-off task lost (its worker killed) hands nothing either. The first
    waiting delivery whose own task comes back (the backstop) takes the turn, and hands it
    on as any attempt does."""
    monkeypatch.setattr(delivery, "SLOW_SECONDS", SLOW)
    acme = await make_tenant(db, "acme")
    one, other = [await hook_at(app, db, acme, f"{receiver.url}?{n}") for n in (1, 2)]
    receiver.answer = slowly
    killed = WebhookTenantSlot(tenant_id=acme.id, held_until=utcnow() + delivery.CLAIM)
    db.add(killed)
    await db.flush()
    oldest, older, newest = await pending(db, one), await pending(db, other), await pending(db, one)
    for task in (oldest, older, newest):
        await waits_its_turn(app, task)
    killed.held_until = utcnow()  # its deadline: no attempt ended, nothing was handed on
    await db.flush()
    assert sent == []

    assert (await attempt(app, newest)).delivered is True  # back first (the jitter)
    [(_, handed)] = sent
    assert handed == [*oldest[1], True]
    sent.clear()  # that hand-off is lost
    assert (await attempt(app, older)).delivered is True  # back next
    assert await run_hand_offs(app, sent) == [oldest[1][1]]
    for task in (oldest, older, newest):  # their own tasks, back later: nothing to send
        assert (await attempt(app, task)).delivered is True
    assert len(receiver.received) == 3
    assert sent == []


async def test_a_hand_off_finding_the_turn_taken_ends_and_the_deliverys_own_task_retries(
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The task as a worker runs it (on the test's database): a hand-off whose turn another
    attempt took meanwhile ends, unsent and not retried (its delivery's own task, which
    retries, would come back twice as often after every hand-off, and so on); the delivery's
    own task retries, at the hold's deadline."""
    loop = asyncio.get_running_loop()

    def on_the_tests_database(celery: object, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work(app.state.sessionmaker), loop).result()

    monkeypatch.setattr(tasks, "get_settings", lambda: app.state.settings)
    monkeypatch.setattr(database, "run", on_the_tests_database)
    acme = await make_tenant(db, "acme")
    task = await pending(db, await hook_at(app, db, acme, receiver.url))
    db.add(WebhookTenantSlot(tenant_id=acme.id, held_until=utcnow() + delivery.CLAIM))
    await db.flush()
    tenant_id, delivery_id = task[1]
    assert await asyncio.to_thread(deliver, tenant_id, delivery_id, True) is False
    backlog = utcnow().isoformat()  # a hand-off of a backlog is tried once too
    assert await asyncio.to_thread(deliver, tenant_id, delivery_id, False, backlog) is False
    with pytest.raises(Retry):
        await asyncio.to_thread(deliver, tenant_id, delivery_id)
    assert (receiver.received, sent) == ([], [])


@pytest.mark.parametrize("deleted", ["delivery", "endpoint"])
async def test_an_attempt_ends_its_holds_whatever_became_of_its_delivery(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    deleted: str,
) -> None:
    """An attempt whose delivery was deleted meanwhile (its conversation deleted, the
    retention purge) left its endpoint held until the hold's deadline, some 15 s: the
    endpoint's next delivery waited that long. Its holds end with it, the endpoint's and
    the tenant's turn for slow endpoints, which it hands on, the endpoint deleted meanwhile
    or not."""
    acme = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, acme, Role.owner))
    hook = await hook_at(app, db, acme, f"{receiver.url}?1")
    first, again = await pending(db, hook), await pending(db, hook)
    other = await pending(db, await hook_at(app, db, acme, f"{receiver.url}?2"))
    gate = threading.Event()
    receiver.gates = {1: gate}
    under_way = asyncio.create_task(attempt(app, first))
    await arrived(receiver, 1)
    if deleted == "delivery":
        gone = uuid.UUID(first[1][1])
        await db.execute(delete(WebhookDelivery).where(WebhookDelivery.id == gone))
    else:
        removed = await client.delete(f"{WEBHOOKS}/{hook.id}", headers=owner.headers)
        assert removed.status_code == 204, removed.text
    gate.set()
    assert (await under_way).retry is False
    handed = again if deleted == "delivery" else other  # the oldest waiting
    assert [task for task in sent if task[0] == deliver.name] == [
        (deliver.name, [*handed[1], True])
    ]
    if deleted == "delivery":
        assert (await attempt(app, again)).delivered is True, "its endpoint no longer held"
    assert (await attempt(app, other)).delivered is True, "the tenant's turn free"
    assert len(receiver.received) == (3 if deleted == "delivery" else 2)


async def test_a_delivery_failing_for_a_day_on_a_healthy_endpoint_fails_for_good(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    """A receiver refusing one payload while taking the others kept the endpoint's
    ``failing_since`` cleared, so that delivery was retried hourly until the retention."""
    owner, hook, refused, task = await refused_test_delivery(client, app, db, receiver, sent)
    receiver.status = 200
    await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)
    assert await run_deliveries(app, sent) == [True]  # the endpoint is well again
    stored = await db.get(WebhookDelivery, uuid.UUID(refused["id"]))
    assert stored is not None
    stored.created_at = utcnow() - timedelta(days=1, minutes=1)
    await db.flush()
    receiver.status = 500
    assert await run_deliveries(app, [task]) == [False]
    log = (await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)).json()
    assert {d["id"]: (d["status"], d["attempts"]) for d in log["deliveries"]}[refused["id"]] == (
        "failed",
        2,
    )
    assert (await client.get(WEBHOOKS, headers=owner.headers)).json()[0]["enabled"] is True


async def test_a_receiver_answering_slowly_fails_the_attempt_at_its_deadline(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A receiver answering 200 then a byte at a time held a worker for as long as it
    liked (the timeout was httpx's, per read): the attempt has one deadline, fails at it
    and is tried again later."""
    owner = await owner_of_acme(app, db)
    hook = (await endpoint(client, owner, receiver.url, ["widget.published"]))["endpoint"]
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.5)
    receiver.drip = 0.1
    await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)
    [task] = sent
    async with asyncio.timeout(5):
        assert await run_deliveries(app, [task]) == [False]
    [entry] = (
        await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)
    ).json()["deliveries"]
    assert (entry["status"], entry["attempts"], entry["response_status"]) == ("pending", 1, None)
    assert entry["response_snippet"] == "Timeout: no complete answer within 0.5 s"

    receiver.drip = None
    await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)  # at once
    assert await run_deliveries(app, sent) == [True, True]  # the first, and the test


async def test_an_answer_holding_a_nul_is_logged_with_a_replacement_character(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    """PostgreSQL refused the snippet (the delivery stayed pending, never attempted again)
    and SQLite kept it, for the log to answer a 500."""
    owner = await owner_of_acme(app, db)
    hook = (await endpoint(client, owner, receiver.url, ["widget.published"]))["endpoint"]
    receiver.body = b"accepted\x00"
    await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)
    assert await run_deliveries(app, sent) == [True]
    log = await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)
    assert log.status_code == 200, log.text
    [entry] = log.json()["deliveries"]
    assert (entry["status"], entry["attempts"]) == ("delivered", 1)
    assert entry["response_snippet"] == "accepted\ufffd"


async def test_the_delivery_log_says_an_address_is_refused_not_what_it_resolves_to(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    sent: list[tuple[str, list[Any]]],
) -> None:
    """A name resolving to an internal address is refused when it connects; the log (read
    by the tenant's staff) named the address (``localhost: resolves to 127.0.0.1: …``)."""
    owner = await owner_of_acme(app, db)
    hook = (await endpoint(client, owner, "https://localhost:9/x", ["widget.published"]))[
        "endpoint"
    ]
    await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)
    [(_, (tenant_id, delivery_id))] = sent
    attempt = await delivery.attempt(
        app.state.sessionmaker,
        app.state.secret_box,
        OutboundPolicy(),  # no exception for loopback: localhost is refused, never connected
        uuid.UUID(tenant_id),
        uuid.UUID(delivery_id),
    )
    assert attempt == delivery.Attempt(delivered=False, retry=True)
    [entry] = (
        await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=owner.headers)
    ).json()["deliveries"]
    assert entry["response_snippet"] == "Refused: localhost: not a public address"


async def test_the_delivery_log_pages_to_its_first_delivery(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, receiver: Receiver
) -> None:
    """Every delivery once, newest first, across pages, though one is added meanwhile (the
    log showed only the latest 200, and nothing said older ones existed); only this
    endpoint's; a cursor the log did not give is a 422 on ``cursor``."""
    owner = await owner_of_acme(app, db)
    hook, other = [
        (await endpoint(client, owner, receiver.url, ["widget.published"]))["endpoint"]["id"]
        for _ in range(2)
    ]
    sent = [
        (await client.post(f"{WEBHOOKS}/{hook}/test", headers=owner.headers)).json()["id"]
        for _ in range(5)
    ]
    await client.post(f"{WEBHOOKS}/{other}/test", headers=owner.headers)
    log = f"{WEBHOOKS}/{hook}/deliveries"
    newest_first = [
        str(row.id)
        for row in (
            await db.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.id.in_([uuid.UUID(i) for i in sent]))
                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            )
        ).all()
    ]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (await client.get(log, params=params, headers=owner.headers)).json()
        seen += [d["id"] for d in page["deliveries"]]
        if page["next_cursor"] is None:
            break
        if len(seen) == 2:  # a delivery added between two pages does not shift the next
            await client.post(f"{WEBHOOKS}/{hook}/test", headers=owner.headers)
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert seen == newest_first

    for cursor in ("bm90IGEgY3Vyc29y", "%%%", sent[0]):
        refused = await client.get(log, params={"cursor": cursor}, headers=owner.headers)
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json()["errors"]] == ["cursor"]


async def test_a_publish_is_announced_to_subscribed_endpoints(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    owner = await owner_of_acme(app, db)
    created = await endpoint(client, owner, receiver.url, ["widget.published"])
    await endpoint(client, owner, receiver.url, ["feedback.created"])  # not subscribed
    widget = await client.post(
        "/api/v1/tenants/acme/widgets", json={"name": "Shop"}, headers=owner.headers
    )
    published = await client.post(
        f"/api/v1/tenants/acme/widgets/{widget.json()['id']}/publish",
        headers={**owner.headers, "If-Match": '"1"'},
    )
    assert published.status_code == 200, published.text
    assert await run_deliveries(app, sent) == [True]
    [got] = receiver.received
    event = Webhook(created["secret"]).verify(got.body, got.headers)
    assert event["type"] == "widget.published"
    assert event["data"]["version"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest",
        "ftp://x.com/h",
        "https://user:pass@hooks.example.com/x",  # credentials go in no URL
        "https://token@hooks.example.com/x",
        "https://hooks.example.com/" + "p" * 2100,  # longer than its column
        "https://hooks.example.com/" + "é" * 400,  # as long once percent-encoded
    ],
)
async def test_urls_kithost_may_not_call_are_refused(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, url: str
) -> None:
    owner = await owner_of_acme(app, db)
    refused = await client.post(
        WEBHOOKS, json={"url": url, "events": ["widget.published"]}, headers=owner.headers
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["url"]
    hook = (await endpoint(client, owner, "https://hooks.example.com/x", ["widget.published"]))[
        "endpoint"
    ]
    changed = await client.patch(
        f"{WEBHOOKS}/{hook['id']}", json={"url": url}, headers=owner.headers
    )
    assert changed.status_code == 422, changed.text
    assert [e["field"] for e in changed.json()["errors"]] == ["url"]


async def test_the_audit_log_shows_a_webhooks_host_never_its_path_or_query(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """Viewers read the audit log but not the webhooks, whose URLs often carry the
    receiver's token (Slack's in the path): the log names the host, the list the URL."""
    acme = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, acme, Role.owner))
    viewer = await login(app, db, await make_member(db, acme, Role.viewer))
    slack = "https://hooks.slack.com/services/T0/B0/SECRETTOKEN?token=QUERYTOKEN"
    hook = (await endpoint(client, owner, slack, ["widget.published"]))["endpoint"]
    moved = "https://Hooks.Example.com:8443/x/OTHERTOKEN#frag"
    for url in ("https://hooks.slack.com/services/T0/B0/NEWTOKEN", moved):
        changed = await client.patch(
            f"{WEBHOOKS}/{hook['id']}", json={"url": url}, headers=owner.headers
        )
        assert changed.status_code == 200, changed.text
    listed = await client.get(WEBHOOKS, headers=owner.headers)
    assert [e["url"] for e in listed.json()] == ["https://hooks.example.com:8443/x/OTHERTOKEN#frag"]
    assert (await client.get(WEBHOOKS, headers=viewer.headers)).status_code == 403

    log = await client.get(
        "/api/v1/tenants/acme/audit", params={"target_type": "webhook"}, headers=viewer.headers
    )
    assert log.status_code == 200, log.text
    # Each word is one no id in the log (hexadecimal UUIDs and request ids) can hold by chance.
    for token in ("SECRETTOKEN", "QUERYTOKEN", "NEWTOKEN", "OTHERTOKEN", "services", "frag"):
        assert token not in log.text
    entries = [(e["action"], e["data"]) for e in reversed(log.json()["entries"])]
    assert entries == [
        ("webhook.created", {"url": "https://hooks.slack.com:443", "events": ["widget.published"]}),
        (  # a new path at the same host: a change, shown as the host
            "webhook.updated",
            {
                "before": {"url": "https://hooks.slack.com:443"},
                "after": {"url": "https://hooks.slack.com:443"},
            },
        ),
        (
            "webhook.updated",
            {
                "before": {"url": "https://hooks.slack.com:443"},
                "after": {"url": "https://hooks.example.com:8443"},
            },
        ),
    ]


async def test_editors_and_other_tenants_see_no_webhooks(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, receiver: Receiver
) -> None:
    acme = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, acme, Role.owner))
    hook = (await endpoint(client, owner, receiver.url, ["widget.published"]))["endpoint"]
    editor = await login(app, db, await make_member(db, acme, Role.editor))
    refused = await client.get(WEBHOOKS, headers=editor.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    other = await make_tenant(db, "other")
    stranger = await login(app, db, await make_member(db, other, Role.owner))
    theirs = f"/api/v1/tenants/other/webhooks/{hook['id']}"
    gone = await client.patch(theirs, json={"enabled": False}, headers=stranger.headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "webhook_not_found")


async def test_a_new_conversation_is_announced_once(
    client: httpx2.AsyncClient,
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    widget, secret = await chat_tenant_with_hook(
        client, app, db, fake_openai, receiver, events=["conversation.started"]
    )
    alice = await visitor(http, app, db, widget)
    thread = thread_of(await alice.send("Where is my order?"))
    await alice.send("And the invoice?", thread_id=thread)
    bob = await visitor(http, app, db, widget, end_user="u:42")
    bobs = thread_of(await bob.send("Hi there"))
    assert await run_deliveries(app, sent) == [True, True], "one per new thread"

    events = [Webhook(secret).verify(got.body, got.headers) for got in receiver.received]
    assert {e["type"] for e in events} == {"conversation.started"}
    by_thread = {e["data"]["thread_id"]: e["data"] for e in events}
    assert set(by_thread) == {thread, bobs}
    assert (by_thread[thread]["text"], by_thread[thread]["end_user"]) == (
        "Where is my order?",
        None,
    )
    assert (by_thread[bobs]["text"], by_thread[bobs]["end_user"]) == ("Hi there", "u:42")
    assert by_thread[bobs]["widget_id"] == str(widget.id)
    assert by_thread[bobs]["item_id"].startswith("msg_")


async def test_a_chat_in_the_dashboards_preview_is_answered_and_announced_nowhere(
    client: httpx2.AsyncClient,
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    events = ["conversation.started", "conversation.message"]
    widget, _ = await chat_tenant_with_hook(client, app, db, fake_openai, receiver, events=events)
    expires = utcnow() + preview.PREVIEW_TTL
    shown = preview.Preview(widget.tenant_id, widget.id, ORIGIN, expires, await maker(db))
    key = preview.issue(app.state.settings, shown)
    staff = await visitor(http, app, db, widget, public_key=key)
    answered = await staff.send("Does the draft answer?")
    assert "".join(deltas(answered)) == fake_openai.reply_text
    thread = thread_of(answered)
    again = await staff.send("And again?", thread_id=thread)
    assert "".join(deltas(again)) == fake_openai.reply_text
    assert await run_deliveries(app, sent) == [], "the tenant's own test, not a conversation"
    assert await db.scalar(select(ChatThread.preview).where(ChatThread.id == thread)) is True

    alice = await visitor(http, app, db, widget)
    await alice.send("Where is my order?")
    assert await run_deliveries(app, sent) == [True] * 3, "started, and both messages"


async def test_a_new_client_error_group_is_announced_once(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    tenant = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    created = await endpoint(client, owner, receiver.url, ["client_error.new_group"])
    widget = await published_widget(db, tenant)

    async def report(*events: dict[str, Any]) -> None:
        """Send a batch as the loader does, then store it as the worker does."""
        response = await client.post(
            f"/v1/embed/{widget.public_key}/events",
            json={"end_user": USER, "events": list(events)},
            headers={"Origin": SHOP},
        )
        assert response.status_code == 202, response.text
        batches = [args for name, args in sent if name == ingest.name]
        sent[:] = [s for s in sent if s[0] != ingest.name]
        for tenant_id, widget_id, stored in batches:
            async with session_scope(
                app.state.sessionmaker, tenant=uuid.UUID(tenant_id)
            ) as session:
                await ingestion.store(
                    session, uuid.UUID(tenant_id), uuid.UUID(widget_id), stored, utcnow()
                )

    await report(client_error("Request 123 failed"), client_error("Request 456 failed"))
    await report(client_error("Request 789 failed"), client_error("Socket closed"))
    assert await run_deliveries(app, sent) == [True, True], "two groups, each new once"
    events = [Webhook(created["secret"]).verify(got.body, got.headers) for got in receiver.received]
    assert {e["type"] for e in events} == {"client_error.new_group"}
    assert sorted((e["data"]["message"], e["data"]["count"]) for e in events) == [
        ("Request <?> failed", 2),
        ("Socket closed", 1),
    ]
    assert all(e["data"]["widget_id"] == str(widget.id) for e in events)
    assert USER not in str(events)


async def test_a_rotated_secret_signs_beside_the_new_one_for_a_day(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    owner = await owner_of_acme(app, db)
    created = await endpoint(client, owner, receiver.url, ["widget.published"])
    old, hook = created["secret"], created["endpoint"]
    rotated = await client.post(f"{WEBHOOKS}/{hook['id']}/rotate-secret", headers=owner.headers)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    until = datetime.fromisoformat(rotated.json()["old_secret_until"])
    assert timedelta(hours=23) < until - utcnow() <= timedelta(hours=24)
    stored = await db.get(WebhookEndpoint, uuid.UUID(hook["id"]))
    assert stored is not None
    await db.refresh(stored)
    assert stored.previous_secret is not None
    assert old not in stored.previous_secret, "encrypted at rest"
    assert app.state.secret_box.decrypt(stored.previous_secret) == old
    listed = await client.get(WEBHOOKS, headers=owner.headers)
    assert old not in listed.text
    assert new not in listed.text
    assert "webhook.secret_rotated" in await audit_actions(db, stored.tenant_id)

    await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)
    assert await run_deliveries(app, sent) == [True]
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(got.body, got.headers)["type"] == "webhook.test"
    assert Webhook(old).verify(got.body, got.headers)["type"] == "webhook.test"

    stored.previous_secret_until = utcnow() - timedelta(seconds=1)  # the day is over
    await db.flush()
    await client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=owner.headers)
    assert await run_deliveries(app, sent) == [True]
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(got.body, got.headers)["type"] == "webhook.test"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(got.body, got.headers)
    await db.refresh(stored)
    assert stored.previous_secret is None, "not kept past its overlap"


async def test_every_message_is_announced_when_the_endpoint_asks(
    client: httpx2.AsyncClient,
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    widget, secret = await chat_tenant_with_hook(
        client, app, db, fake_openai, receiver, events=["conversation.message"]
    )
    alice = await visitor(http, app, db, widget, end_user="u:7")
    thread = thread_of(await alice.send("Where is my order?"))
    await alice.send("And the invoice?", thread_id=thread)
    assert await run_deliveries(app, sent) == [True] * 4, "two questions, two answers"
    events = [Webhook(secret).verify(got.body, got.headers) for got in receiver.received]
    assert {e["type"] for e in events} == {"conversation.message"}
    said = sorted((e["data"]["created_at"], e["data"]["role"], e["data"]["text"]) for e in events)
    assert [(role, text) for _, role, text in said] == [
        ("user", "Where is my order?"),
        ("assistant", fake_openai.reply_text),
        ("user", "And the invoice?"),
        ("assistant", fake_openai.reply_text),
    ]
    assert {(e["data"]["thread_id"], e["data"]["end_user"]) for e in events} == {(thread, "u:7")}
    assert len({e["data"]["item_id"] for e in events}) == 4


@pytest.mark.parametrize("by", ["staff", "the visitor"])
async def test_a_deleted_threads_deliveries_go_with_it(
    client: httpx2.AsyncClient,
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    by: str,
) -> None:
    """They hold what was said: kept, they could be read and replayed after the thread was
    deleted, and an anonymous visitor's (which name no end user) no erase could find."""
    widget, _ = await chat_tenant_with_hook(
        client, app, db, fake_openai, receiver, events=["conversation.message"]
    )
    tenant = await db.get(Tenant, widget.tenant_id)
    assert tenant is not None
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    alice = await visitor(http, app, db, widget)  # anonymous
    thread = thread_of(await alice.send("My card is 4111 1111 1111 1111"))
    assert await run_deliveries(app, sent) == [True, True]
    api = f"/api/v1/tenants/{tenant.slug}"
    [hook] = (await client.get(f"{api}/webhooks", headers=owner.headers)).json()
    log = f"{api}/webhooks/{hook['id']}/deliveries"
    assert len((await client.get(log, headers=owner.headers)).json()["deliveries"]) == 2

    if by == "staff":
        deleted = await client.delete(f"{api}/conversations/{thread}", headers=owner.headers)
        assert deleted.status_code == 204, deleted.text
    else:
        await alice.call("threads.delete", thread_id=thread)

    assert (await client.get(log, headers=owner.headers)).json()["deliveries"] == []


async def test_an_endpoint_hears_the_next_message_after_a_chat_found_none(
    client: httpx2.AsyncClient,
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    """A tenant found without endpoints is not looked up again for a while (QUIET_SECONDS),
    except right after this process creates one."""
    widget = await make_chat_widget(db, app, fake_openai)
    tenant = await db.get(Tenant, widget.tenant_id)
    assert tenant is not None
    alice = await visitor(http, app, db, widget)
    thread = thread_of(await alice.send("Where is my order?"))
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    created = await client.post(
        f"/api/v1/tenants/{tenant.slug}/webhooks",
        json={"url": receiver.url, "events": ["conversation.message"]},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    await alice.send("And the invoice?", thread_id=thread)
    assert await run_deliveries(app, sent) == [True, True], "the second question and answer"
    events = [
        Webhook(created.json()["secret"]).verify(g.body, g.headers) for g in receiver.received
    ]
    assert sorted(e["data"]["role"] for e in events) == ["assistant", "user"]


async def test_an_idle_conversation_is_announced_once_per_idle_period(
    client: httpx2.AsyncClient,
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
) -> None:
    widget, secret = await chat_tenant_with_hook(
        client, app, db, fake_openai, receiver, events=["conversation.idle"], idle_minutes=10
    )
    elsewhere = await make_chat_widget(db, app, fake_openai)  # another tenant, no endpoint
    alice = await visitor(http, app, db, widget)
    thread = thread_of(await alice.send("Where is my order?"))
    stranger = await visitor(http, app, db, elsewhere)
    await stranger.send("Not for acme's hook")
    tried = await conversation(db, widget, "u:staff", ["Trying the draft"], preview=True)
    keys = app.state.settings.keys()

    async def idle_after(minutes: int) -> list[dict[str, Any]]:
        """Run the periodic work ``minutes`` from now; the events it delivered."""
        now = utcnow() + timedelta(minutes=minutes)
        await announce_idle(app.state.sessionmaker, keys, now)
        before = len(receiver.received)
        assert all(await run_deliveries(app, sent))
        return [Webhook(secret).verify(r.body, r.headers) for r in receiver.received[before:]]

    assert await idle_after(9) == [], "not idle long enough"
    [event] = await idle_after(11)  # not the preview's chat: the tenant's own test
    assert not await db.scalar(select(WebhookIdleMark).where(WebhookIdleMark.thread_id == tried))
    assert event["type"] == "conversation.idle"
    assert event["data"]["id"] == thread
    assert event["data"]["end_user"].startswith("a:h_"), "a device id is a credential"
    assert [(i["type"], i["text"]) for i in event["data"]["items"]] == [
        ("user_message", "Where is my order?"),
        ("assistant_message", fake_openai.reply_text),
    ]
    assert await idle_after(12) == [], "once per idle period"
    assert await idle_after(600) == [], "however long it stays idle"

    await alice.send("Still there?", thread_id=thread)  # a new period of activity
    assert await run_deliveries(app, sent) == []
    assert await idle_after(5) == []
    [again] = await idle_after(11)
    assert again["data"]["id"] == thread
    assert len(again["data"]["items"]) == 4
    assert (
        receiver.received[-1].headers["webhook-id"] != receiver.received[-2].headers["webhook-id"]
    )


@pytest.mark.parametrize("minutes", [0, 10_081, "soon"])
async def test_an_idle_time_out_of_range_is_refused(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, receiver: Receiver, minutes: Any
) -> None:
    owner = await owner_of_acme(app, db)
    body = {"url": receiver.url, "events": ["conversation.idle"], "idle_minutes": minutes}
    refused = await client.post(WEBHOOKS, json=body, headers=owner.headers)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["idle_minutes"]
    hook = (await endpoint(client, owner, receiver.url, ["conversation.idle"]))["endpoint"]
    assert hook["idle_minutes"] == 30, "the default"
    changed = await client.patch(
        f"{WEBHOOKS}/{hook['id']}", json={"idle_minutes": minutes}, headers=owner.headers
    )
    assert changed.status_code == 422, changed.text


async def test_a_backlog_of_an_endpoint_fast_again_drains_through_hand_offs(
    app: FastAPI,
    db: AsyncSession,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The turn goes to slow endpoints only: an endpoint that was slow and answers fast
    again is handed no turn, and its backlog, waiting its turn, waited for the backstop
    (``TURN_BACKSTOP``, 150 s; some 25 s before the hand-offs). The attempt that finds it
    fast hands its backlog on, made before then, one at a time, each passing the next on:
    every delivery goes once, oldest first, and none comes back twice."""
    monkeypatch.setattr(delivery, "SLOW_SECONDS", SLOW)
    acme = await make_tenant(db, "acme")
    hook = await hook_at(app, db, acme, receiver.url)
    slot = WebhookTenantSlot(tenant_id=acme.id, held_until=utcnow() + delivery.CLAIM)
    db.add(slot)
    await db.flush()
    first, *backlog = [await pending(db, hook) for _ in range(4)]
    for task in (first, *backlog):
        await waits_its_turn(app, task)
    slot.held_until = utcnow()  # the attempt holding it ended
    await db.flush()

    assert (await attempt(app, first)).delivered is True  # back first, answered fast
    handed: list[str] = []
    while sent:
        [(name, (tenant_id, delivery_id, *rest))] = sent
        sent.clear()
        assert (name, tenant_id, rest[:1]) == (deliver.name, str(acme.id), [False])
        handed.append(delivery_id)
        assert (await attempt(app, (name, [tenant_id, delivery_id, *rest]))).delivered is True
    assert handed == [task[1][1] for task in backlog]
    ids = {
        str(d.id): d.event_id
        for d in await db.scalars(select(WebhookDelivery).execution_options(populate_existing=True))
    }
    assert [r.headers["webhook-id"] for r in receiver.received] == [
        ids[task[1][1]] for task in (first, *backlog)
    ]
    for task in backlog:  # their own tasks, back later: nothing to send
        assert (await attempt(app, task)).delivered is True
    assert (len(receiver.received), sent) == (4, [])
