from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import (
    Row,
    ScalarSelect,
    Select,
    delete,
    exists,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from kithost.db import insert, rowcount
from kithost.kit.cursors import Position
from kithost.models import (
    ChatThread,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookIdleMark,
    WebhookTenantSlot,
)


async def endpoints(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[WebhookEndpoint]:
    result = await session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return result.all()


async def endpoint(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint | None:
    return await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
        )
    )


async def claim_endpoint(
    session: AsyncSession, endpoint: WebhookEndpoint, now: datetime, until: datetime
) -> datetime | None:
    """Hold ``endpoint`` for an attempt until ``until`` unless an attempt holds it or it
    rests; else when it is due (None: held now). One statement: of two workers, one holds it
    (the other reads when it is due)."""
    held = await session.scalar(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.tenant_id == endpoint.tenant_id,
            WebhookEndpoint.id == endpoint.id,
            or_(WebhookEndpoint.next_attempt_at.is_(None), WebhookEndpoint.next_attempt_at <= now),
        )
        .values(next_attempt_at=until)
        .returning(WebhookEndpoint.id)
        .execution_options(synchronize_session=False)
    )
    if held is not None:
        return None
    await session.refresh(endpoint, ["next_attempt_at"])
    return endpoint.next_attempt_at or now


async def claim_tenant_slot(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime, until: datetime
) -> datetime | None:
    """Hold the tenant's slot for its slow endpoints until ``until`` unless an attempt holds
    it; else when it is free (None: held now). One statement, ``INSERT … ON CONFLICT DO
    UPDATE … WHERE`` its hold is over: of two workers, one holds it (the other reads when it
    is free)."""
    slot = WebhookTenantSlot
    held = await session.scalar(
        insert(session, slot)
        .values(tenant_id=tenant_id, held_until=until)
        .on_conflict_do_update(
            index_elements=[slot.tenant_id],
            set_={"held_until": until},
            where=slot.held_until <= now,
        )
        .returning(slot.tenant_id)
    )
    if held is not None:
        return None
    due = await session.scalar(select(slot.held_until).where(slot.tenant_id == tenant_id))
    return due or now


async def tenant_slot_held_until(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime
) -> datetime | None:
    """Until when an attempt holds the tenant's slot for its slow endpoints (None: free)."""
    slot = WebhookTenantSlot
    return await session.scalar(
        select(slot.held_until).where(slot.tenant_id == tenant_id, slot.held_until > now)
    )


async def release_endpoint(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, hold: datetime
) -> None:
    """End the endpoint's hold taken until ``hold``, unless another attempt holds it since
    (or it rests)."""
    await session.execute(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.tenant_id == tenant_id,
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.next_attempt_at == hold,
        )
        .values(next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


async def release_tenant_slot(session: AsyncSession, tenant_id: uuid.UUID, hold: datetime) -> bool:
    """Free the tenant's slot taken until ``hold``, unless another attempt holds it since;
    whether it did."""
    result = await session.execute(
        delete(WebhookTenantSlot).where(
            WebhookTenantSlot.tenant_id == tenant_id, WebhookTenantSlot.held_until == hold
        )
    )
    return rowcount(result) > 0


async def next_turn(
    session: AsyncSession, tenant_id: uuid.UUID, attempted: uuid.UUID, now: datetime
) -> uuid.UUID | None:
    """The tenant's oldest pending delivery to a slow endpoint that may take the tenant's
    slot (enabled, neither held nor resting), other than ``attempted``: that one went,
    failed for good, rests with its endpoint, or another unit of work holds it (a deletion,
    its other attempt), so its turn would be lost. A plain read, no lock: it waits for no
    one, whatever the attempt holds."""
    return await session.scalar(_next_turn(tenant_id, attempted, now))


T = TypeVar("T")

PENDING = literal(DeliveryStatus.pending, WebhookDelivery.status.type, literal_execute=True)
"""``'pending'`` written into the statement, as the partial index's condition is: against a
parameter, PostgreSQL's generic plan of a prepared statement (psycopg prepares what a
connection runs five times) cannot use the index, and read the delivered ones."""


def _next_turn(tenant_id: uuid.UUID, attempted: uuid.UUID, now: datetime) -> Select[uuid.UUID]:
    """:func:`next_turn`'s statement: the oldest of the endpoints' oldest, each read from the
    pending deliveries' index (endpoint, time), so a resting, held or fast endpoint's backlog
    is never read (reading the tenant's pending deliveries from its oldest, a resting
    endpoint's day of them was read at every turn), nor the delivered ones. The endpoints
    are read alone, each its oldest delivery's time and id, joined to nothing the planner
    could read whole."""
    endpoint, first = WebhookEndpoint, aliased(WebhookDelivery)

    def oldest(column: InstrumentedAttribute[T]) -> ScalarSelect[T]:
        return (
            select(column)
            .where(
                first.tenant_id == tenant_id,
                first.endpoint_id == endpoint.id,
                first.status == PENDING,
                first.id != attempted,
            )
            .order_by(first.created_at, first.id)
            .limit(1)
            .correlate(endpoint)
            .scalar_subquery()
        )

    delivery_id = oldest(first.id)
    return (
        select(delivery_id)
        .where(
            endpoint.tenant_id == tenant_id,
            endpoint.enabled,
            endpoint.slow_since.is_not(None),
            or_(endpoint.next_attempt_at.is_(None), endpoint.next_attempt_at <= now),
            delivery_id.is_not(None),
        )
        .order_by(oldest(first.created_at), delivery_id)
        .limit(1)
    )


async def backlog_after(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    before: datetime,
    after: Position[uuid.UUID] | None,
    other_than: uuid.UUID,
) -> uuid.UUID | None:
    """The endpoint's oldest pending delivery made before ``before`` (and after ``after``),
    other than ``other_than``: the next of the backlog of an endpoint fast again. Read from
    the pending deliveries' index (endpoint, time), no lock."""
    first = WebhookDelivery
    query = (
        select(first.id)
        .where(
            first.tenant_id == tenant_id,
            first.endpoint_id == endpoint_id,
            first.status == PENDING,
            first.created_at < before,
            first.id != other_than,
        )
        .order_by(first.created_at, first.id)
        .limit(1)
    )
    if after is not None:  # its time alone too, which the index reads from
        query = query.where(
            first.created_at >= after[0], tuple_(first.created_at, first.id) > tuple_(*after)
        )
    return await session.scalar(query)


async def deliveries(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    before: Position[uuid.UUID] | None,
    limit: int,
) -> Sequence[WebhookDelivery]:
    """The endpoint's deliveries, newest first, from the one after ``before``."""
    delivery = WebhookDelivery
    query = (
        select(delivery)
        .where(delivery.tenant_id == tenant_id, delivery.endpoint_id == endpoint_id)
        .order_by(delivery.created_at.desc(), delivery.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(tuple_(delivery.created_at, delivery.id) < tuple_(*before))
    result = await session.scalars(query)
    return result.all()


async def delivery(
    session: AsyncSession, tenant_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    return await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id == delivery_id
        )
    )


async def lock_delivery(
    session: AsyncSession, tenant_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    """The delivery, locked to be written (``FOR NO KEY UPDATE``); None, at once, when it is
    gone or another unit of work holds it: a deletion (of it, its thread, its end user, its
    tenant; the purge), or its other attempt recording its own outcome. An attempt holds its
    tenant by then, and the tenant's deletion takes its threads' deliveries before the
    tenant's row: waiting for the delivery would be waiting in a circle."""
    return await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id == delivery_id)
        .with_for_update(key_share=True, skip_locked=True)
    )


async def hold_thread(session: AsyncSession, tenant_id: uuid.UUID, thread_id: str) -> bool:
    """Whether the tenant's thread is there, held (``FOR KEY SHARE``) until the unit of work
    ends: its deletion waits for a delivery about it written meanwhile, and deletes it too
    (``chat.repository.delete_threads``)."""
    held = await session.scalar(
        select(ChatThread.id)
        .where(ChatThread.tenant_id == tenant_id, ChatThread.id == thread_id)
        .with_for_update(read=True, key_share=True)
    )
    return held is not None


async def enabled_endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    """Every tenant's enabled endpoints (the periodic work's starting point)."""
    result = await session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.enabled).order_by(WebhookEndpoint.id)
    )
    return result.all()


async def newly_idle(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    active_after: datetime,
    idle_since: datetime,
    limit: int,
) -> Sequence[Row[str, datetime]]:
    """The endpoint's tenant's conversations (not a preview's threads) last active between
    ``active_after`` and ``idle_since`` whose idle period the endpoint has not been told of:
    (id, last activity), longest idle first."""
    told = exists().where(
        WebhookIdleMark.endpoint_id == endpoint.id,
        WebhookIdleMark.thread_id == ChatThread.id,
        WebhookIdleMark.activity_at >= ChatThread.updated_at,
    )
    result = await session.execute(
        select(ChatThread.id, ChatThread.updated_at)
        .where(
            ChatThread.tenant_id == endpoint.tenant_id,
            ChatThread.preview.is_(False),
            ChatThread.updated_at > active_after,
            ChatThread.updated_at <= idle_since,
            ~told,
        )
        .order_by(ChatThread.updated_at, ChatThread.id)
        .limit(limit)
    )
    return result.all()


async def idle_marks(
    session: AsyncSession, endpoint: WebhookEndpoint, thread_ids: Sequence[str]
) -> dict[str, WebhookIdleMark]:
    result = await session.scalars(
        select(WebhookIdleMark).where(
            WebhookIdleMark.tenant_id == endpoint.tenant_id,
            WebhookIdleMark.endpoint_id == endpoint.id,
            WebhookIdleMark.thread_id.in_(thread_ids),
        )
    )
    return {mark.thread_id: mark for mark in result}


async def purge_deliveries(session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime) -> int:
    """Delete the tenant's deliveries made before ``cutoff`` (their payloads carry what
    visitors said); how many. By endpoint, so the hourly purge can use the deliveries index
    (endpoint, time) rather than the whole table, once per tenant."""
    endpoints = select(WebhookEndpoint.id).where(WebhookEndpoint.tenant_id == tenant_id)
    result = await session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.tenant_id == tenant_id,
            WebhookDelivery.endpoint_id.in_(endpoints),
            WebhookDelivery.created_at < cutoff,
        )
    )
    return rowcount(result)


async def delete_end_user_deliveries(
    session: AsyncSession, tenant_id: uuid.UUID, end_user_id: str
) -> int:
    """Delete the tenant's deliveries of events about the end user's threads: call it before
    the threads go; how many. (A thread deleted earlier took its deliveries with it.)"""
    threads = select(ChatThread.id).where(
        ChatThread.tenant_id == tenant_id, ChatThread.end_user_id == end_user_id
    )
    result = await session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.thread_id.in_(threads)
        )
    )
    return rowcount(result)
