from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base, TenantOwned, str_enum


class WebhookEndpoint(TenantOwned):
    """Where the tenant wants events POSTed, signed the Standard Webhooks way with
    ``secret`` (encrypted: Kithost signs with it)."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    events: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(default=True)
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    """The secret before the last rotation (encrypted too): deliveries are signed with both
    until ``previous_secret_until``, so receivers can switch without losing events."""
    previous_secret_until: Mapped[datetime | None]
    idle_minutes: Mapped[int] = mapped_column(default=30)
    """``conversation.idle``: after how long without activity a thread is announced."""
    failing_since: Mapped[datetime | None]
    """The first failed delivery of the current run of failures; None when the last one
    went through. A day of failures disables the endpoint."""
    slow_since: Mapped[datetime | None]
    """The first slow attempt (longer than ``webhooks.delivery.SLOW_SECONDS``) of the current
    run of them; None when the last attempt was fast. A slow endpoint takes one attempt at a
    time, as a failing one does, and the tenant's slow endpoints together take one at a time
    (``WebhookTenantSlot``)."""
    next_attempt_at: Mapped[datetime | None]
    """While the endpoint fails or is slow, no delivery is attempted before this: the
    deadline of the attempt under way (one at a time, however many wait), or a failing
    endpoint's rest after a failed attempt (ever fewer attempts; ``webhooks.delivery``).
    None when no attempt holds it and it does not rest."""


class WebhookTenantSlot(Base):
    """The tenant's one attempt at a time to its slow endpoints, all of them together
    (``webhooks.delivery``): the row is there while an attempt to one of them holds the
    slot, until ``held_until`` (that attempt's deadline, and some) or until it ends, which
    deletes it. No row, or one past its ``held_until``, is a free slot."""

    __tablename__ = "webhook_tenant_slots"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    held_until: Mapped[datetime]


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class WebhookDelivery(TenantOwned):
    """One event for one endpoint: its attempts so far (the delivery log). The pending ones
    have an index of their own, by endpoint and time: the tenant's slot for slow endpoints
    goes to the oldest of those that may go (``webhooks.repository.next_turn``), found
    without reading the delivered ones, which pile up for the retention's length, nor the
    backlog of an endpoint that rests."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "endpoint_id", "created_at"),
        Index(
            "ix_webhook_deliveries_pending",
            "endpoint_id",
            "created_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(64))
    """``webhook-id``: the same on every attempt, for the receiver to deduplicate on."""
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    thread_id: Mapped[str | None] = mapped_column(String(64), index=True)
    """The chat thread the event is about, if any: deleting the thread deletes its deliveries
    (``chat.repository.delete_threads``), sent or not (a pending one is never sent), as it
    deletes what was said."""
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus), default=DeliveryStatus.pending
    )
    attempts: Mapped[int] = mapped_column(default=0)
    response_status: Mapped[int | None]
    response_snippet: Mapped[str | None] = mapped_column(String(500))
    latency_ms: Mapped[int | None]


class WebhookIdleMark(TenantOwned):
    """``conversation.idle`` announced to an endpoint for a thread's idle period: the one
    that started at ``activity_at`` (the thread's last activity then). A thread active again
    is announced again once idle."""

    __tablename__ = "webhook_idle_marks"
    __table_args__ = (UniqueConstraint("endpoint_id", "thread_id"),)

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    thread_id: Mapped[str] = mapped_column(
        ForeignKey("chat_threads.id", ondelete="CASCADE"), index=True
    )
    activity_at: Mapped[datetime]
