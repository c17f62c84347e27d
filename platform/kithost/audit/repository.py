"""SQL for the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.kit.cursors import Position
from kithost.models import AuditLogEntry


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; every field left empty matches everything."""

    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    """Inclusive."""
    until: datetime | None = None
    """Exclusive."""


async def list_entries(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    where: AuditFilter,
    *,
    before: Position[uuid.UUID] | None,
    limit: int,
) -> Sequence[AuditLogEntry]:
    """The tenant's entries (the platform's, without a tenant, when None) matching
    ``where``, newest first, from the one after ``before``."""
    entry = AuditLogEntry
    query = (
        select(entry)
        .where(entry.tenant_id.is_(None) if tenant_id is None else entry.tenant_id == tenant_id)
        .order_by(entry.created_at.desc(), entry.id.desc())
        .limit(limit)
    )
    for column, value in (
        (entry.action, where.action),
        (entry.target_type, where.target_type),
        (entry.target_id, where.target_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(entry.created_at >= where.since)
    if where.until is not None:
        query = query.where(entry.created_at < where.until)
    if before is not None:
        query = query.where(tuple_(entry.created_at, entry.id) < tuple_(*before))
    result = await session.execute(query)
    return result.scalars().all()
