"""Webhook endpoints as the tenant manages them, and :func:`emit`, how the domains announce
an event: a delivery row per subscribed endpoint, sent by a task once the event's unit of
work has committed.

A process that finds a tenant without an enabled endpoint does not look again for
``QUIET_SECONDS`` (the chat emits on every message it stores, and most tenants have no
endpoint): an endpoint created or enabled in another process may miss that long of events;
in the process that creates or enables it, none.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth.principals import TenantAccess
from kithost.errors import NotFound, invalid_field
from kithost.kit import cursors
from kithost.kit.crypto import SecretBox
from kithost.kit.outbound import OutboundPolicy, origin_of
from kithost.models import WebhookDelivery, WebhookEndpoint
from kithost.models.base import utcnow
from kithost.webhooks import repository, tasks
from kithost.webhooks.delivery import CLAIM
from kithost.webhooks.schemas import Endpoint, EndpointCreate, EndpointUpdate
from kithost.worker.enqueue import enqueue

TEST_EVENT = "webhook.test"
SECRET_OVERLAP = timedelta(hours=24)
"""How long the secret a rotation replaces still signs deliveries."""
QUIET_SECONDS = 2.0
_quiet: TTLCache[uuid.UUID, bool] = TTLCache(100_000, QUIET_SECONDS, timer=time.monotonic)
"""The tenants this process found without an enabled endpoint, for ``QUIET_SECONDS``."""
"""Tenants found without an enabled endpoint, and when (``time.monotonic()``); see above."""


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str, policy: OutboundPolicy) -> None:
    """HTTPS, at an address Kithost may reach (``kit.outbound``); plain HTTP only where
    the deployment allows the address (loopback in development)."""
    refused = policy.url_refusal(url)
    if refused is not None:
        raise invalid_field("url", f"Kithost may not connect to this address: {refused}")
    parts = urlsplit(url)
    if parts.scheme == "http" and not policy.opens(parts.hostname or ""):
        raise invalid_field(
            "url", "a webhook URL must be https:// (http only where KITHOST_OUTBOUND_ALLOW opens)"
        )


async def create_endpoint(
    session: AsyncSession,
    box: SecretBox,
    policy: OutboundPolicy,
    access: TenantAccess,
    body: EndpointCreate,
) -> tuple[WebhookEndpoint, str]:
    url = str(body.url)
    check_url(url, policy)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        tenant_id=access.tenant.id,
        url=url,
        description=body.description,
        events=sorted({e.value for e in body.events}),
        enabled=True,
        idle_minutes=body.idle_minutes,
        secret=box.encrypt(secret),
    )
    session.add(endpoint)
    await session.flush()
    _quiet.pop(access.tenant.id, None)
    # The log's readers may not see the endpoints, and a URL's path or query often holds the
    # receiver's token (Slack's ``/services/T…/B…/<token>``, ``?token=``): its origin only.
    data = {"url": origin_of(url), "events": endpoint.events}
    _record(session, access, "webhook.created", endpoint, data)
    return endpoint, secret


async def update_endpoint(
    session: AsyncSession,
    policy: OutboundPolicy,
    access: TenantAccess,
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, access, endpoint_id)
    before = _state(endpoint)
    if body.url is not None:
        check_url(str(body.url), policy)
        endpoint.url = str(body.url)
    if body.description is not None:
        endpoint.description = body.description
    if body.events is not None:
        endpoint.events = sorted({e.value for e in body.events})
    if body.idle_minutes is not None:
        endpoint.idle_minutes = body.idle_minutes
    if body.enabled is not None:
        endpoint.enabled = body.enabled
        endpoint.failing_since = endpoint.next_attempt_at = None
    await session.flush()
    _quiet.pop(access.tenant.id, None)
    _record(session, access, "webhook.updated", endpoint, _changes(before, _state(endpoint)))
    return endpoint


async def rotate_secret(
    session: AsyncSession, box: SecretBox, access: TenantAccess, endpoint_id: uuid.UUID
) -> tuple[str, datetime]:
    """A new signing secret, in use at once; the old one keeps signing beside it for
    ``SECRET_OVERLAP`` (a secret rotated twice within it: the one just replaced). The new
    secret, and until when the old one signs."""
    endpoint = await get_endpoint(session, access, endpoint_id)
    secret = new_secret()
    until = utcnow() + SECRET_OVERLAP
    endpoint.previous_secret, endpoint.previous_secret_until = endpoint.secret, until
    endpoint.secret = box.encrypt(secret)
    _record(session, access, "webhook.secret_rotated", endpoint, {"old_until": until.isoformat()})
    return secret, until


async def delete_endpoint(
    session: AsyncSession, access: TenantAccess, endpoint_id: uuid.UUID
) -> None:
    endpoint = await get_endpoint(session, access, endpoint_id)
    await session.delete(endpoint)
    _record(session, access, "webhook.deleted", endpoint)


async def shown(
    session: AsyncSession, tenant_id: uuid.UUID, endpoints: Sequence[WebhookEndpoint]
) -> list[Endpoint]:
    """The tenant's ``endpoints`` as the API shows them: with ``waiting_turn``, whether one
    that is slow, neither held nor resting itself, waits for an attempt to another of the
    tenant's slow endpoints, which holds their one turn (the tenant's slot)."""
    now = utcnow()
    held = await repository.tenant_slot_held_until(session, tenant_id, now) is not None

    def waiting(endpoint: WebhookEndpoint) -> bool:
        due = endpoint.next_attempt_at
        return endpoint.enabled and endpoint.slow_since is not None and (due is None or due <= now)

    return [
        Endpoint.model_validate(endpoint).model_copy(
            update={"waiting_turn": held and waiting(endpoint)}
        )
        for endpoint in endpoints
    ]


async def get_endpoint(
    session: AsyncSession, access: TenantAccess, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await repository.endpoint(session, access.tenant.id, endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", code="webhook_not_found")
    return endpoint


@dataclass(frozen=True)
class DeliveryPage:
    """Deliveries, newest first, and the cursor of the next page (None on the last)."""

    deliveries: Sequence[WebhookDelivery]
    next_cursor: str | None


async def list_deliveries(
    session: AsyncSession,
    access: TenantAccess,
    endpoint_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> DeliveryPage:
    """A page of the endpoint's delivery log; ``cursor`` continues a listing."""
    endpoint = await get_endpoint(session, access, endpoint_id)
    before = None if cursor is None else cursors.decode(cursor, uuid.UUID, field="cursor")
    rows = await repository.deliveries(
        session, access.tenant.id, endpoint.id, before=before, limit=limit + 1
    )
    return DeliveryPage(*cursors.page(rows, limit, lambda row: (row.created_at, row.id)))


async def send_test(
    session: AsyncSession, access: TenantAccess, endpoint_id: uuid.UUID
) -> WebhookDelivery:
    endpoint = await get_endpoint(session, access, endpoint_id)
    _due_now(endpoint)
    return queue_delivery(session, endpoint, TEST_EVENT, {"message": "A test event from Kithost."})


async def replay(
    session: AsyncSession, access: TenantAccess, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """The same event (same ``webhook-id``) sent again, as a new delivery; not once its
    thread is deleted (its deliveries go with it), nor while it is being deleted."""
    endpoint = await get_endpoint(session, access, endpoint_id)
    original = await repository.delivery(session, access.tenant.id, delivery_id)
    if (
        original is None
        or original.endpoint_id != endpoint.id
        or (
            original.thread_id is not None
            and not await repository.hold_thread(session, access.tenant.id, original.thread_id)
        )
    ):
        raise NotFound("No such delivery.", code="delivery_not_found")
    _due_now(endpoint)
    return queue_delivery(
        session, endpoint, original.event_type, original.payload["data"], original.event_id
    )


def _due_now(endpoint: WebhookEndpoint) -> None:
    """End a failing endpoint's rest: a test or replay the staff ask for (their receiver
    mended, say) is tried at once, not in up to an hour. An attempt under way (its hold at
    most ``CLAIM`` ahead) keeps it: one at a time still."""
    now = utcnow()
    if endpoint.next_attempt_at is not None and endpoint.next_attempt_at > now + CLAIM:
        endpoint.next_attempt_at = now


async def emit(
    session: AsyncSession, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any]
) -> int:
    """Announce an event to the tenant's enabled endpoints subscribed to it; how many."""
    return await emit_all(session, tenant_id, [(event_type, data)])


async def emit_all(
    session: AsyncSession, tenant_id: uuid.UUID, events: Sequence[tuple[str, dict[str, Any]]]
) -> int:
    """:func:`emit` for several events with one look at the endpoints (none for a quiet
    tenant, see above); how many deliveries."""
    if tenant_id in _quiet:
        return 0
    endpoints: Sequence[WebhookEndpoint] = await repository.endpoints(session, tenant_id)
    if not any(endpoint.enabled for endpoint in endpoints):
        _quiet[tenant_id] = True
        return 0
    deliveries = 0
    for event_type, data in events:
        for endpoint in endpoints:
            if endpoint.enabled and event_type in endpoint.events:
                queue_delivery(session, endpoint, event_type, data)
                deliveries += 1
    return deliveries


def _thread_of(event_type: str, data: dict[str, Any]) -> str | None:
    """The thread an event is about: ``data.thread_id``, or a ``conversation.idle``
    transcript's ``id``."""
    thread = data.get("id") if event_type == "conversation.idle" else data.get("thread_id")
    return thread if isinstance(thread, str) else None


def queue_delivery(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    event_type: str,
    data: dict[str, Any],
    event_id: str | None = None,
) -> WebhookDelivery:
    event_id = event_id or f"msg_{uuid.uuid4().hex}"
    payload = {"type": event_type, "timestamp": utcnow().isoformat(), "data": data}
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        tenant_id=endpoint.tenant_id,
        endpoint_id=endpoint.id,
        event_id=event_id,
        event_type=event_type,
        payload=payload,
        thread_id=_thread_of(event_type, data),
    )
    session.add(delivery)
    enqueue(session, tasks.deliver, str(endpoint.tenant_id), str(delivery.id))
    return delivery


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``audit.changes`` of two :func:`_state`s, the URLs compared in full and shown as
    their origin (``create_endpoint``): a new path at the same host still shows as a change
    of ``url``."""
    data = audit.changes(before, after)
    for side in data.values():
        if "url" in side:
            side["url"] = origin_of(side["url"])
    return data


def _state(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "enabled": endpoint.enabled,
        "idle_minutes": endpoint.idle_minutes,
    }


def _record(
    session: AsyncSession,
    access: TenantAccess,
    action: str,
    endpoint: WebhookEndpoint,
    data: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        access.actor,
        action,
        tenant_id=access.tenant.id,
        target_type="webhook",
        target_id=endpoint.id,
        data=data,
    )
