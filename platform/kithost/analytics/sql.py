"""SQL pieces the jobs' repositories share: raw events by tenant and time, and ``INSERT …
ON CONFLICT`` for the session's database."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import AnalyticsEvent

Stored = AnalyticsEvent


def insert(session: AsyncSession, model: type[Any]) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support, for the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def between(tenant_id: uuid.UUID, start: datetime, end: datetime) -> ColumnElement[bool]:
    """The tenant's raw events that occurred in [start, end)."""
    return and_(
        Stored.tenant_id == tenant_id, Stored.occurred_at >= start, Stored.occurred_at < end
    )
