from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.db import rowcount
from kithost.models import Invitation, Membership, Role, User

MemberRow = Row[uuid.UUID, str, str, Role, datetime]
"""A member as the API shows it: ``user_id``, ``email``, ``name``, ``role``, ``created_at``."""

_MEMBER = select(
    Membership.user_id, User.email, User.name, Membership.role, Membership.created_at
).join(User, User.id == Membership.user_id)


async def list_members(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[MemberRow]:
    result = await session.execute(
        _MEMBER.where(Membership.tenant_id == tenant_id).order_by(User.email)
    )
    return result.all()


async def get_member(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> MemberRow | None:
    result = await session.execute(
        _MEMBER.where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    )
    return result.one_or_none()


async def lock_owner_ids(session: AsyncSession, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    """The tenant's owners, their rows locked (PostgreSQL) so that two requests cannot each
    remove one of the last two owners."""
    result = await session.execute(
        select(Membership.user_id)
        .where(Membership.tenant_id == tenant_id, Membership.role == Role.owner)
        .order_by(Membership.user_id)
        .with_for_update()
    )
    return list(result.scalars())


async def delete_pending_invitations_by(
    session: AsyncSession, tenant_id: uuid.UUID, inviter_id: uuid.UUID
) -> int:
    """Delete the pending invitations to the tenant that ``inviter_id`` made; how many (this
    package sits below ``invitations``: what a member made goes with their role here)."""
    result = await session.execute(
        delete(Invitation).where(
            Invitation.tenant_id == tenant_id,
            Invitation.invited_by_id == inviter_id,
            Invitation.accepted_at.is_(None),
        )
    )
    return rowcount(result)
