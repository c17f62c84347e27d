"""Small helpers shared by the REST API tests."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import AuditLogEntry


async def audit_actions(db: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    """The actions in the audit log of a tenant."""
    result = await db.execute(
        select(AuditLogEntry.action).where(AuditLogEntry.tenant_id == tenant_id)
    )
    return list(result.scalars())


def token_of(accept_url: str) -> str:
    """The invitation token carried in an accept link's fragment."""
    _, _, token = accept_url.partition("#token=")
    assert token
    return token
