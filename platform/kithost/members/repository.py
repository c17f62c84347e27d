from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.db import rowcount
from kithost.models import ApiClient, Invitation, Membership, Role, User

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


async def lock_membership(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, *, share: bool = False
) -> Membership | None:
    """The user's membership of the tenant as committed now, its row locked (PostgreSQL;
    ``share``: for share) until the unit of work ends."""
    result = await session.execute(
        select(Membership)
        .where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
        .with_for_update(read=share)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


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


async def lock_members_clients_and_invitations(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Lock every membership of the tenant (by user id), then every API client, then every
    invitation (by id), until the unit of work ends (PostgreSQL)."""
    for tenant_column, key in (
        (Membership.tenant_id, Membership.user_id),
        (ApiClient.tenant_id, ApiClient.id),
        (Invitation.tenant_id, Invitation.id),
    ):
        await session.execute(
            select(key).where(tenant_column == tenant_id).order_by(key).with_for_update()
        )


async def delete_pending_invitations_of(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> int:
    """Delete the pending invitations to the tenant that ``user_id`` made or that were sent
    to their email; how many (this package sits below ``invitations``: what goes with a
    member's role goes here)."""
    email = select(User.email).where(User.id == user_id).scalar_subquery()
    result = await session.execute(
        delete(Invitation).where(
            Invitation.tenant_id == tenant_id,
            Invitation.accepted_at.is_(None),
            or_(Invitation.invited_by_id == user_id, Invitation.email == email),
        )
    )
    return rowcount(result)
