from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base


class AnalyticsPendingRollup(Base):
    """A batch's mark on an hour of a tenant that got new events since its rollup was last
    computed: one row per batch and hour, inserted and never updated, so concurrent batches
    of the same hour never wait for one another's row lock."""

    __tablename__ = "analytics_pending_rollups"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(primary_key=True)
    """When the batch's events arrived: a rollup that read older marks leaves newer ones."""
