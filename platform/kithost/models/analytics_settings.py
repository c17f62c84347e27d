from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base

DEFAULT_RETENTION_DAYS = 90
MIN_RETENTION_DAYS = 1


class AnalyticsSettings(Base):
    """A tenant's analytics settings; a tenant without a row has the defaults."""

    __tablename__ = "analytics_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    retention_days: Mapped[int] = mapped_column(default=DEFAULT_RETENTION_DAYS)
    """Raw events, error samples and chat data older than this are purged."""
