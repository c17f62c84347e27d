from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base, JSONType, str_enum


class RollupPeriod(StrEnum):
    hour = "hour"
    day = "day"
    """A UTC day."""


TENANT_WIDE = uuid.UUID(int=0)
"""The ``widget_id`` of a period's row for the whole tenant: it holds only ``end_users``,
distinct across the tenant's widgets (a visitor of two widgets is one), its counters zero."""


class AnalyticsRollup(Base):
    """A widget's metrics over one hour or one UTC day, recomputed from raw events.

    Counters add up across rows; ``end_users`` (distinct end users) does not: the tenant's
    own is the :data:`TENANT_WIDE` row's. The latency columns are histograms (counts per
    :data:`kithost.analytics.latency.BOUNDS_MS` bucket) that merge by adding them up
    element-wise.
    """

    __tablename__ = "analytics_rollups"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[RollupPeriod] = mapped_column(str_enum(RollupPeriod), primary_key=True)
    start: Mapped[datetime] = mapped_column(primary_key=True)
    widget_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    loads: Mapped[int] = mapped_column(default=0)
    opens: Mapped[int] = mapped_column(default=0)
    sessions: Mapped[int] = mapped_column(default=0)
    threads: Mapped[int] = mapped_column(default=0)
    messages: Mapped[int] = mapped_column(default=0)
    responses: Mapped[int] = mapped_column(default=0)
    tokens_in: Mapped[int] = mapped_column(default=0)
    tokens_out: Mapped[int] = mapped_column(default=0)
    feedback_up: Mapped[int] = mapped_column(default=0)
    feedback_down: Mapped[int] = mapped_column(default=0)
    client_errors: Mapped[int] = mapped_column(default=0)
    guardrails_tripped: Mapped[int] = mapped_column(default=0)
    end_users: Mapped[int] = mapped_column(default=0)
    first_token_ms: Mapped[list[int]] = mapped_column(JSONType)
    total_ms: Mapped[list[int]] = mapped_column(JSONType)
