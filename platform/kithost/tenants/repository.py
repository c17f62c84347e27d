from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.db import rowcount
from kithost.models import Membership, Tenant


async def list_tenants(
    session: AsyncSession,
    *,
    member_id: uuid.UUID | None,
    after: str | None,
    limit: int,
    q: str | None,
) -> Sequence[Tenant]:
    """Tenants by slug, from the one after ``after``; only ``member_id``'s unless None;
    only those whose slug or name holds ``q`` (any case) unless it is None."""
    query = select(Tenant).order_by(Tenant.slug).limit(limit)
    if member_id is not None:
        query = query.join(Membership, Membership.tenant_id == Tenant.id).where(
            Membership.user_id == member_id
        )
    if after is not None:
        query = query.where(Tenant.slug > after)
    if q is not None:
        query = query.where(
            or_(
                Tenant.slug.icontains(q, autoescape=True), Tenant.name.icontains(q, autoescape=True)
            )
        )
    async with rls.bypassing(session, rls.Bypass.credentials):  # the user's memberships
        result = await session.execute(query)
    return result.scalars().all()


async def delete_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    """Delete the tenant (its rows go with it: the foreign keys cascade); whether it was
    there to delete."""
    return bool(rowcount(await session.execute(delete(Tenant).where(Tenant.id == tenant_id))))


async def hold_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    """Whether the tenant is there, held (``FOR KEY SHARE``) until the unit of work ends: its
    deletion waits for this unit of work, or went first. Work that writes several of a
    tenant's tables while its deletion may run takes it before them, as the deletion takes
    the tenant's row before theirs (the foreign keys' cascade), so one waits for the other
    holding nothing the other needs, never in a circle: a webhook attempt (before its
    endpoint, its tenant's slot and its delivery), an end user's erasure (after their
    threads, which the deletion takes first too)."""
    held = await session.scalar(
        select(Tenant.id).where(Tenant.id == tenant_id).with_for_update(read=True, key_share=True)
    )
    return held is not None
