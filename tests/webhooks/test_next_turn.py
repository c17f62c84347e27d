"""Finding whose turn it is (``repository.next_turn``) on PostgreSQL with a backlog: the
deliveries read are the endpoints' oldest pending ones that may go, however many wait for a
resting endpoint or go to a fast one, and however many were delivered before."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.db import session_scope
from kithost.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from kithost.models.base import utcnow
from kithost.webhooks import repository
from tests.factories import make_tenant
from tests.webhooks.helpers import hook_at

BACKLOG = 2_000

READ = """
SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0)
     + pg_stat_get_xact_tuples_returned('webhook_deliveries'::regclass)
     + pg_stat_get_xact_tuples_fetched('webhook_deliveries'::regclass)
FROM pg_index i WHERE i.indrelid = 'webhook_deliveries'::regclass
"""
"""Entries of the deliveries' table and indexes read so far in this transaction."""


async def deliveries(
    db: AsyncSession, hook: WebhookEndpoint, count: int, status: DeliveryStatus, ago: timedelta
) -> list[uuid.UUID]:
    """``count`` deliveries to ``hook`` made from ``ago`` on, a second apart; their ids."""
    start = utcnow() - ago
    rows: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "tenant_id": hook.tenant_id,
            "endpoint_id": hook.id,
            "event_id": f"msg_{n}",
            "event_type": "webhook.test",
            "payload": {},
            "status": status,
            "attempts": 0,
            "created_at": start + timedelta(seconds=n),
            "updated_at": start,
        }
        for n in range(count)
    ]
    await db.execute(insert(WebhookDelivery), rows)
    return [row["id"] for row in rows]


async def read_by(
    app: FastAPI,
    tenant_id: uuid.UUID,
    plan: str,
    find: Callable[[AsyncSession], Awaitable[uuid.UUID | None]],
) -> uuid.UUID | None:
    """What ``find`` finds in a unit of work of the tenant's, the statement planned for its
    parameters or (``plan``: ``generic``) prepared at once and planned for any; it reads
    20 entries of the deliveries' table and indexes at most."""
    async with session_scope(app.state.sessionmaker, tenant=tenant_id) as session:
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
        assert driver is not None
        threshold = driver.prepare_threshold
        if plan == "generic":  # prepared at once, and planned for any parameters
            driver.prepare_threshold = 0
            await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        try:
            before = await session.scalar(text(READ))
            found = await find(session)
            read = await session.scalar(text(READ)) - before
        finally:
            driver.prepare_threshold = threshold
    assert read <= 20, f"{read} entries read"
    return found


@pytest.mark.parametrize("plan", ["custom", "generic"])
async def test_the_next_turn_reads_no_resting_fast_or_delivered_backlog(
    app: FastAPI, db: AsyncSession, database_url: str, plan: str
) -> None:
    """The tenant's pending deliveries were read from the oldest until one of a slow
    endpoint that may go: a resting endpoint's day of them (and a fast one's) was read at
    every turn, some 150,000 rows in 0.4 s for a tenant whose receiver had been down five
    hours. Each endpoint that may go gives its oldest from the pending deliveries' index,
    whose condition is written into the statement: a prepared statement's generic plan (a
    connection's sixth run of it) read the delivered ones too."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's statistics of what a transaction read")
    acme = await make_tenant(db, "acme")
    resting = await hook_at(app, db, acme, "https://resting.example/")
    resting.failing_since = utcnow() - timedelta(hours=5)
    resting.next_attempt_at = utcnow() + timedelta(minutes=30)
    fast = await hook_at(app, db, acme, "https://fast.example/", slow=False)
    ready = [await hook_at(app, db, acme, f"https://{n}.example/") for n in range(2)]
    await deliveries(db, resting, BACKLOG, DeliveryStatus.pending, timedelta(hours=5))
    await deliveries(db, fast, BACKLOG // 4, DeliveryStatus.pending, timedelta(hours=4))
    for hook in ready:
        await deliveries(db, hook, BACKLOG, DeliveryStatus.delivered, timedelta(days=3))
    await deliveries(db, ready[1], 3, DeliveryStatus.pending, timedelta(minutes=20))
    attempted, oldest, _ = await deliveries(
        db, ready[0], 3, DeliveryStatus.pending, timedelta(minutes=30)
    )
    await db.execute(text("ANALYZE webhook_deliveries"))  # as autovacuum would

    async def next_turn(session: AsyncSession) -> uuid.UUID | None:
        return await repository.next_turn(session, acme.id, attempted, utcnow())

    assert await read_by(app, acme.id, plan, next_turn) == oldest


@pytest.mark.parametrize("plan", ["custom", "generic"])
async def test_the_backlog_of_an_endpoint_fast_again_is_read_from_its_next(
    app: FastAPI, db: AsyncSession, database_url: str, plan: str
) -> None:
    """The next of an endpoint's backlog, once it is fast again (``repository.backlog_after``),
    is read from the pending deliveries' index at its place: not the delivered ones, nor the
    pending ones before it, nor another endpoint's."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's statistics of what a transaction read")
    acme = await make_tenant(db, "acme")
    hook, other = [await hook_at(app, db, acme, f"https://{n}.example/") for n in range(2)]
    earlier = await deliveries(db, hook, BACKLOG, DeliveryStatus.pending, timedelta(hours=5))
    await deliveries(db, other, BACKLOG, DeliveryStatus.pending, timedelta(hours=4))
    await deliveries(db, hook, BACKLOG, DeliveryStatus.delivered, timedelta(hours=4))
    later = await deliveries(db, hook, 3, DeliveryStatus.pending, timedelta(hours=2))
    handed, following = earlier[-1], later[0]
    await db.execute(text("ANALYZE webhook_deliveries"))  # as autovacuum would
    row = await db.get_one(WebhookDelivery, handed)
    after = (row.created_at, row.id)

    async def backlog_after(session: AsyncSession) -> uuid.UUID | None:
        return await repository.backlog_after(session, acme.id, hook.id, utcnow(), after, handed)

    assert await read_by(app, acme.id, plan, backlog_after) == following
