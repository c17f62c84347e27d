from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.db import lock_key, rowcount
from kithost.models import Invitation, Tenant


async def get_by_token_hash(session: AsyncSession, token_hash: str) -> Invitation | None:
    result = await session.execute(select(Invitation).where(Invitation.token_hash == token_hash))
    return result.scalar_one_or_none()


async def lock(session: AsyncSession, invitation_id: uuid.UUID) -> Invitation | None:
    """The invitation as committed now, its row locked (PostgreSQL) until the unit of work
    ends; None when it was deleted meanwhile."""
    result = await session.execute(
        select(Invitation)
        .where(Invitation.id == invitation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def lock_email(session: AsyncSession, tenant_id: uuid.UUID, email: str) -> None:
    """Hold the invitations of ``email`` to the tenant until the unit of work ends, so that
    replacing the pending ones and adding the new one is one step: a transaction-level
    advisory lock on PostgreSQL (no row stands for an email not invited yet); SQLite runs
    one writer at a time anyway."""
    await lock_key(session, f"kithost.invitations:{tenant_id}:{email}")


async def delete_pending_by_client(
    session: AsyncSession, tenant_id: uuid.UUID, client_id: uuid.UUID
) -> int:
    """Delete the pending invitations to the tenant that the API client made; how many."""
    result = await session.execute(
        delete(Invitation).where(
            Invitation.tenant_id == tenant_id,
            Invitation.invited_by_client_id == client_id,
            Invitation.accepted_at.is_(None),
        )
    )
    return rowcount(result)


async def list_pending(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[Invitation]:
    result = await session.execute(
        select(Invitation)
        .where(Invitation.tenant_id == tenant_id, Invitation.accepted_at.is_(None))
        .order_by(Invitation.created_at, Invitation.id)
    )
    return result.scalars().all()


async def lock_pending(
    session: AsyncSession, tenant_id: uuid.UUID, invitation_id: uuid.UUID
) -> Invitation | None:
    """The tenant's pending invitation as committed now, its row locked (PostgreSQL) until
    the unit of work ends; None when there is none, or it was used or deleted meanwhile."""
    result = await session.execute(
        select(Invitation)
        .where(
            Invitation.tenant_id == tenant_id,
            Invitation.id == invitation_id,
            Invitation.accepted_at.is_(None),
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def delete_pending_for(session: AsyncSession, tenant_id: uuid.UUID, email: str) -> int:
    """Delete the pending invitations of ``email`` to the tenant; how many there were."""
    result = await session.execute(
        delete(Invitation).where(
            Invitation.tenant_id == tenant_id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
        )
    )
    return rowcount(result)


async def mark_accepted(
    session: AsyncSession, invitation_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> bool:
    """Mark a pending invitation used; False when another request used it first."""
    result = await session.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.accepted_at.is_(None))
        .values(accepted_at=now, accepted_by_id=user_id)
    )
    return rowcount(result) == 1


async def tenant_of(session: AsyncSession, invitation: Invitation) -> Tenant:
    return await session.get_one(Tenant, invitation.tenant_id)
