from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base


class AnalyticsEvent(Base):
    """One event as a loader or Kithost itself reported it, stored once per client event id.

    ``widget_id`` carries no foreign key: a deleted widget's history stays until retention
    removes it (and a foreign key would need one more index on this, the busiest table).
    """

    __tablename__ = "analytics_events"
    __table_args__ = (
        Index("ix_analytics_events_tenant_id_occurred_at", "tenant_id", "occurred_at"),
        Index("ix_analytics_events_tenant_id_end_user_id", "tenant_id", "end_user_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    widget_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    end_user_id: Mapped[str | None] = mapped_column(String(210))
    thread_id: Mapped[str | None] = mapped_column(String(64))
    """``data.thread_id`` of server facts, kept apart for the funnel's per-thread counts."""
    data: Mapped[dict[str, Any]]
