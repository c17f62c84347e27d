from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base


class AnalyticsPendingRollup(Base):
    """An hour of a tenant that got new events since its rollup was last computed."""

    __tablename__ = "analytics_pending_rollups"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    marked_at: Mapped[datetime]
    """When events last arrived for it: a rollup that read older marks leaves newer ones."""
