"""Sending one delivery (the worker's side): signed with ``standardwebhooks``, POSTed
through ``kit.outbound`` (public addresses only, unless the deployment opens others), with
one deadline for the whole attempt and a cap on what is read of the answer; the attempt is
written to the log.

An endpoint that fails or answers slowly takes one attempt at a time: the attempt holds it
(``repository.claim_endpoint``) and the deliveries finding it held wait, unsent. A tenant's
slow endpoints take one attempt at a time all together: the attempt holds the tenant's slot
too (``repository.claim_tenant_slot``), and a slow endpoint finding it held waits, unsent,
holding nothing; so a tenant's slow receivers hold one worker at most, whatever it sends and
however many endpoints it has (a failing one answering fast rests between attempts
instead). A fast endpoint takes its deliveries side by side, whatever its tenant's slow
ones do. An attempt ends its holds when it ends, whatever became of its delivery or its
endpoint meanwhile; a worker lost mid-attempt leaves them to their deadline (``CLAIM``).
An attempt that held the tenant's slot hands the turn on when it ends: it enqueues, once
its unit of work commits, a hand-off (``tasks.deliver``'s) of the tenant's oldest delivery
waiting for a slow endpoint that may go (``repository.next_turn``), so the turn is taken as
soon as it is free, oldest first, whatever the backlog. A delivery waiting its turn (the
slot held, or its slow endpoint held by an attempt: not a rest) relies on that hand-off and
looks again only after ``TURN_BACKSTOP``, ten holds' deadlines: looking again at the hold's
deadline, a thousand waiting took some 50 task runs a second from every tenant's workers,
for one delivery every few seconds. A hand-off is tried once: finding the turn taken it
ends (the attempt holding it hands it on), and its delivery's own task still comes back,
so tasks never multiply; a hand-off that needs no turn (its delivery gone or sent, its
endpoint disabled, fast again, or held or resting) passes it on as it would, if the slot is
free, so the turn is not lost with it. A turn lost with a worker (killed holding the slot or
a hand-off) waits for the backstop: the first waiting delivery coming back takes it.
The turn goes to slow endpoints only: the attempt finding one fast again hands its backlog
on (``repository.backlog_after``: the endpoint's deliveries made before then, oldest first),
one delivery at a time, each passing the next on before it is sent (a fast endpoint takes
them side by side), so the backlog goes at once, not at its backstop; a hand-off of the
backlog is tried once, and one finding its endpoint slow, failing or disabled again passes
nothing on (the turn, or the rest, is its backlog's again).

Each unit of work of an attempt holds its tenant first (``tenants.repository.hold_tenant``),
then its endpoint, then the slot, and writes its delivery last, only if no other unit of work
holds it (``repository.lock_delivery``): the tenant's deletion takes the deliveries about
its threads, then the tenant's row, then (by the cascade) its endpoints, slot and other
deliveries; an attempt ending took its endpoint, then waited for its delivery, and the two
waited for each other until PostgreSQL ended one. The delivery next in turn it reads without
a lock (``repository.next_turn``), waiting for no one."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from kithost.audit import service as audit
from kithost.auth.principals import SYSTEM
from kithost.db import Sessionmaker, session_scope
from kithost.kit.crypto import SecretBox
from kithost.kit.outbound import OutboundPolicy, outbound_client, refused_in
from kithost.kit.schemas import NUL
from kithost.models import DeliveryStatus, WebhookDelivery
from kithost.models.base import utcnow
from kithost.tenants import repository as tenants
from kithost.webhooks import repository, tasks
from kithost.worker.enqueue import enqueue

TIMEOUT_SECONDS = 10.0
"""The deadline of one attempt, from connecting to the end of the answer read: a receiver
answering slowly (a byte every few seconds) fails the attempt, which is tried again later."""
SLOW_SECONDS = 2.0
"""An attempt longer than this is slow (a receiver answering in full within the deadline
but late): its endpoint takes one attempt at a time, in turn with its tenant's other slow
endpoints, until one is no longer slow."""
SNIPPET_BYTES = 500
REST = (timedelta(seconds=30), timedelta(hours=1))
"""How long a failing endpoint rests after a failed attempt: as long as it has been failing,
within these bounds (so about twice as long each time)."""
CLAIM = timedelta(seconds=TIMEOUT_SECONDS + 5)
"""How long the attempt under way holds a failing or slow endpoint, and a slow one's tenant
slot (its deadline, and some); it ends its holds sooner when it ends (a failed attempt's
endpoint rests instead)."""
TURN_BACKSTOP = 10 * CLAIM
"""How long a delivery waiting its turn for a slow endpoint waits before looking again (and
the task's jitter): the turn is handed to it when it is the oldest (its endpoint's backlog
when it is fast again), so this is the backstop for a turn or a hand-off lost with a
worker."""
GIVE_UP_AFTER = timedelta(days=1)
"""An endpoint failing this long is disabled (and audited); its deliveries stop. A delivery
still not delivered this long after it was made fails for good, the endpoint otherwise well
(a receiver refusing one payload while taking the others, or slow ones waiting their turn)."""


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    retry: bool
    """Worth trying again later (the endpoint is still enabled)."""
    wait_seconds: float | None = None
    """Not attempted: the endpoint (failing or slow), or its tenant's slow endpoints, take
    none before this many seconds."""


async def attempt(
    sessionmaker: Sessionmaker,
    box: SecretBox,
    policy: OutboundPolicy,
    tenant_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    hand_off: bool = False,
    backlog: datetime | None = None,
) -> Attempt:
    """Attempt the delivery unless its turn is taken; ``hand_off``: the tenant's turn for
    slow endpoints was handed to it (passed on if it takes none); ``backlog``: it is of the
    backlog of an endpoint fast again, made before then (the next is passed on)."""
    async with session_scope(sessionmaker, tenant=tenant_id) as session:
        if not await tenants.hold_tenant(session, tenant_id):  # deleted: all went with it
            return Attempt(delivered=False, retry=False)
        delivery = await repository.delivery(session, tenant_id, delivery_id)
        if delivery is None or delivery.status is DeliveryStatus.delivered:
            if hand_off:
                await _pass_turn(session, tenant_id, delivery_id)
            if delivery is not None and backlog is not None:  # sent by its own task
                await _pass_backlog(session, delivery, backlog)
            return Attempt(delivered=True, retry=False)
        endpoint = await repository.endpoint(session, tenant_id, delivery.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            await _fail(session, delivery)
            if hand_off:
                await _pass_turn(session, tenant_id, delivery_id)
            return Attempt(delivered=False, retry=False)
        endpoint_id, now, hold, slot, due = endpoint.id, utcnow(), None, False, None
        was_slow = endpoint.slow_since is not None
        turn = False  # waiting for the tenant's turn (an attempt under way hands it on)
        if endpoint.failing_since is not None or endpoint.slow_since is not None:
            # A failing endpoint takes one attempt at a time, after its rest: a receiver
            # that hangs holds one worker at most, and less and less of its time. A slow
            # one too, its next attempt due as soon as this one goes through, and in turn
            # with the tenant's other slow endpoints (the endpoint held first, then the
            # tenant's slot, everywhere: no two attempts wait for each other's locks).
            hold = now + CLAIM
            due = await repository.claim_endpoint(session, endpoint, now, hold)
            # Held by an attempt, not resting (only a failed attempt makes it rest): the
            # endpoint is slow, and the attempt holds the tenant's turn too.
            turn = due is not None and endpoint.failing_since is None
            if due is None and endpoint.slow_since is not None:
                due = await repository.claim_tenant_slot(session, tenant_id, now, hold)
                slot, turn = due is None, due is not None
                if due is not None:  # the tenant's turn is another endpoint's
                    await repository.release_endpoint(session, tenant_id, endpoint_id, hold)
        if hand_off and not slot:  # handed the turn, it takes none: the next may
            await _pass_turn(session, tenant_id, delivery_id)
        if backlog is not None and hold is None:  # still fast: the next goes beside it
            await _pass_backlog(session, delivery, backlog)
        if due is not None:
            if now - delivery.created_at >= GIVE_UP_AFTER:
                await _fail(session, delivery)
                return Attempt(delivered=False, retry=False)
            wait = TURN_BACKSTOP if turn else due - now
            return Attempt(delivered=False, retry=True, wait_seconds=wait.total_seconds())
        url, secrets = endpoint.url, [box.decrypt(endpoint.secret)]
        if endpoint.previous_secret is not None:
            until = endpoint.previous_secret_until
            if until is not None and now < until:
                secrets.append(box.decrypt(endpoint.previous_secret))
            else:  # its overlap is over: it need not be kept
                endpoint.previous_secret = endpoint.previous_secret_until = None
        event_id, body = delivery.event_id, json.dumps(delivery.payload, separators=(",", ":"))
    headers = {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        # Standard Webhooks: several signatures, space-separated; any one verifies.
        "webhook-signature": " ".join(Webhook(s).sign(event_id, now, body) for s in secrets),
    }
    started = time.monotonic()
    status, snippet = None, ""
    try:
        async with (
            asyncio.timeout(TIMEOUT_SECONDS),
            outbound_client(policy, timeout=TIMEOUT_SECONDS) as client,
            client.stream("POST", url, content=body, headers=headers) as response,
        ):
            status = response.status_code
            async for chunk in response.aiter_bytes():
                snippet += chunk.decode(errors="replace")
                if len(snippet) >= SNIPPET_BYTES:
                    break
    except TimeoutError:
        status, snippet = None, f"Timeout: no complete answer within {TIMEOUT_SECONDS:g} s"
    except Exception as exc:
        refused = refused_in(exc)
        snippet = type(exc).__name__ if refused is None else f"Refused: {refused}"
    answer = _Answer(status, snippet, time.monotonic() - started)
    async with session_scope(sessionmaker, tenant=tenant_id) as session:
        if not await tenants.hold_tenant(session, tenant_id):  # its holds went with it
            return Attempt(delivered=answer.delivered, retry=False)
        if hold is not None:
            # Its own holds only, whatever became of the delivery or the endpoint meanwhile:
            # one an attempt begun since holds (the endpoint slow meanwhile) stays, or each
            # attempt ending would let one more go at once.
            await repository.release_endpoint(session, tenant_id, endpoint_id, hold)
            slot = slot and await repository.release_tenant_slot(session, tenant_id, hold)
        outcome = await _record(session, tenant_id, delivery_id, endpoint_id, now, answer)
        if slot:  # the turn is free: the oldest waiting takes it, after this commits
            await _hand_turn(session, tenant_id, delivery_id)
        if was_slow:
            await _hand_backlog(session, tenant_id, endpoint_id, delivery_id)
        return outcome


async def _hand_turn(session: AsyncSession, tenant_id: uuid.UUID, attempted: uuid.UUID) -> None:
    """Hand the tenant's turn for slow endpoints to its oldest delivery that may take it
    (not ``attempted``), once the unit of work commits."""
    after = await repository.next_turn(session, tenant_id, attempted, utcnow())
    if after is not None:
        enqueue(session, tasks.deliver, str(tenant_id), str(after), True)


async def _pass_turn(session: AsyncSession, tenant_id: uuid.UUID, handed: uuid.UUID) -> None:
    """Pass on the turn handed to ``handed``, which takes none, unless an attempt holds the
    slot (it hands the turn on as it ends): so one hand-off at most goes on for each turn
    ended, and a turn ends only when one is taken."""
    if await repository.tenant_slot_held_until(session, tenant_id, utcnow()) is None:
        await _hand_turn(session, tenant_id, handed)


async def _hand_backlog(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, attempted: uuid.UUID
) -> None:
    """Hand on the backlog of the endpoint ``attempted`` found slow, if it is fast again (and
    well): its oldest delivery made before now, other than ``attempted``, once the unit of
    work commits."""
    endpoint = await repository.endpoint(session, tenant_id, endpoint_id)
    if endpoint is None or not endpoint.enabled or endpoint.slow_since or endpoint.failing_since:
        return
    before = utcnow()
    first = await repository.backlog_after(session, tenant_id, endpoint_id, before, None, attempted)
    if first is not None:
        enqueue(session, tasks.deliver, str(tenant_id), str(first), False, before.isoformat())


async def _pass_backlog(session: AsyncSession, handed: WebhookDelivery, before: datetime) -> None:
    """Pass on the backlog of an endpoint fast again, made before ``before``: the delivery
    after ``handed``, once the unit of work commits."""
    after = (handed.created_at, handed.id)
    tenant_id = handed.tenant_id
    following = await repository.backlog_after(
        session, tenant_id, handed.endpoint_id, before, after, handed.id
    )
    if following is not None:
        enqueue(session, tasks.deliver, str(tenant_id), str(following), False, before.isoformat())


@dataclass(frozen=True)
class _Answer:
    status: int | None
    snippet: str
    took: float
    """Seconds, from connecting to the end of the answer read."""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def _record(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    delivery_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    now: datetime,
    answer: _Answer,
) -> Attempt:
    """Write the attempt begun at ``now`` to its delivery and endpoint; what became of it."""
    # None too while a deletion holds it (it goes) or its other attempt records its own.
    delivery = await repository.lock_delivery(session, tenant_id, delivery_id)
    endpoint = await repository.endpoint(session, tenant_id, endpoint_id)
    if delivery is None or endpoint is None:
        return Attempt(delivered=answer.delivered, retry=False)
    delivery.attempts += 1
    delivery.response_status = answer.status
    delivery.latency_ms = int(answer.took * 1000)
    # PostgreSQL's text holds no NUL, nor does the log's schema show one.
    delivery.response_snippet = answer.snippet[:SNIPPET_BYTES].replace(NUL, "\ufffd")
    slow = answer.took > SLOW_SECONDS
    endpoint.slow_since = (endpoint.slow_since or now) if slow else None
    if answer.delivered:
        delivery.status = DeliveryStatus.delivered
        endpoint.failing_since = None
        return Attempt(delivered=True, retry=False)
    endpoint.failing_since = endpoint.failing_since or now
    ended = utcnow()
    endpoint.next_attempt_at = ended + min(max(ended - endpoint.failing_since, REST[0]), REST[1])
    if now - endpoint.failing_since >= GIVE_UP_AFTER:
        endpoint.enabled = False
        delivery.status = DeliveryStatus.failed
        audit.record(
            session,
            SYSTEM,
            "webhook.disabled",
            tenant_id=tenant_id,
            target_type="webhook",
            target_id=endpoint.id,
            data={"failing_since": endpoint.failing_since.isoformat()},
        )
        return Attempt(delivered=False, retry=False)
    if now - delivery.created_at >= GIVE_UP_AFTER:
        delivery.status = DeliveryStatus.failed
        return Attempt(delivered=False, retry=False)
    return Attempt(delivered=False, retry=True)


async def _fail(session: AsyncSession, delivery: WebhookDelivery) -> None:
    """Mark ``delivery`` failed for good, unless a deletion of it (or its other attempt)
    holds it: waiting for that while holding the tenant could be waiting in a circle
    (``repository.lock_delivery``)."""
    if await repository.lock_delivery(session, delivery.tenant_id, delivery.id) is not None:
        delivery.status = DeliveryStatus.failed
