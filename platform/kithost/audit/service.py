from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import AuditLogEntry


@dataclass(frozen=True)
class Actor:
    """Who acted: a dashboard user, an API client, the CLI or the system itself."""

    type: str
    id: str | None = None


CLI = Actor("cli")
SYSTEM = Actor("system")


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
