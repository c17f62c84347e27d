"""What the secrets tests check in the audit log."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import AuditLogEntry


async def audit_entries(db: AsyncSession, tenant_id: uuid.UUID) -> list[AuditLogEntry]:
    """The tenant's audit entries, oldest first."""
    result = await db.execute(
        select(AuditLogEntry)
        .where(AuditLogEntry.tenant_id == tenant_id)
        .order_by(AuditLogEntry.created_at, AuditLogEntry.id)
    )
    return list(result.scalars())


def assert_never_logged(entries: list[AuditLogEntry], *secrets: str | None) -> None:
    """None of ``secrets`` (in clear or encrypted) appears in any entry."""
    logged = json.dumps([[e.action, e.target_id, e.data] for e in entries])
    for secret in secrets:
        assert secret
        assert secret not in logged
