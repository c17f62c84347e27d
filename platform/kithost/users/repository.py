from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.models import DashboardSession, Membership, Role, Tenant, User


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def memberships(session: AsyncSession, user_id: uuid.UUID) -> list[tuple[Tenant, Role]]:
    """The tenants ``user_id`` belongs to, with the role held in each, by slug."""
    async with rls.bypassing(session, rls.Bypass.credentials):
        result = await session.execute(
            select(Tenant, Membership.role)
            .join(Membership, Membership.tenant_id == Tenant.id)
            .where(Membership.user_id == user_id)
            .order_by(Tenant.slug)
        )
    return [(tenant, role) for tenant, role in result]


async def revoke_other_dashboard_sessions(
    session: AsyncSession, user_id: uuid.UUID, keep: uuid.UUID, now: datetime
) -> None:
    """End every live dashboard session of ``user_id`` except ``keep``."""
    await session.execute(
        update(DashboardSession)
        .where(
            DashboardSession.user_id == user_id,
            DashboardSession.id != keep,
            DashboardSession.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
