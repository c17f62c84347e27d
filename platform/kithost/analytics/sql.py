"""SQL pieces the jobs' repositories share: raw events by tenant and time."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, and_

from kithost.models import AnalyticsEvent

Stored = AnalyticsEvent


def between(tenant_id: uuid.UUID, start: datetime, end: datetime) -> ColumnElement[bool]:
    """The tenant's raw events that occurred in [start, end)."""
    return and_(
        Stored.tenant_id == tenant_id, Stored.occurred_at >= start, Stored.occurred_at < end
    )
