from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.audit import repository
from kithost.audit.repository import AuditFilter
from kithost.auth.principals import Actor
from kithost.kit import cursors
from kithost.models import AuditLogEntry, Tenant


def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    tenant_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Add an audit entry to the current unit of work (it commits with the change)."""
    session.add(
        AuditLogEntry(
            tenant_id=tenant_id,
            actor_type=actor.type,
            actor_id=actor.id,
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            data=data or {},
            request_id=structlog.contextvars.get_contextvars().get("request_id"),
        )
    )


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``data`` of an entry for a change: ``{"before": {...}, "after": {...}}`` holding
    only the fields whose values differ (a field missing on one side shows on the other
    only). Pass JSON values, and never a secret: say whether one is set instead."""
    differ = [
        key
        for key in {**before, **after}
        if key not in before or key not in after or before[key] != after[key]
    ]
    return {
        "before": {key: before[key] for key in differ if key in before},
        "after": {key: after[key] for key in differ if key in after},
    }


@dataclass(frozen=True)
class AuditPage:
    """Entries, newest first, and the cursor of the next page (None on the last)."""

    entries: Sequence[AuditLogEntry]
    next_cursor: str | None


async def list_entries(
    session: AsyncSession,
    tenant: Tenant | None,
    where: AuditFilter,
    *,
    cursor: str | None,
    limit: int,
) -> AuditPage:
    """A page of the tenant's entries (the platform's own when None: users made, tenants
    deleted, secrets re-encrypted) matching ``where``; ``cursor`` continues a listing."""
    before = None if cursor is None else cursors.decode(cursor, uuid.UUID, field="cursor")
    # Rows of no tenant are read bypassing row-level security (a platform admin's request).
    scope = rls.bypassing(session, rls.Bypass.platform) if tenant is None else nullcontext()
    async with scope:
        rows = await repository.list_entries(
            session, None if tenant is None else tenant.id, where, before=before, limit=limit + 1
        )
    return AuditPage(*cursors.page(rows, limit, lambda entry: (entry.created_at, entry.id)))
