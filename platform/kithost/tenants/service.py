from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.errors import Conflict, NotFound, invalid_field
from kithost.models import Membership, Role, Tenant, User
from kithost.tenants import repository

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


async def create_tenant(
    session: AsyncSession, actor: audit.Actor, *, slug: str, name: str, owner: User
) -> Tenant:
    """Create a tenant with ``owner`` as its first member (role owner)."""
    if not SLUG.fullmatch(slug):
        raise invalid_field("slug", "lowercase letters, digits and inner hyphens, at most 63")
    if not name.strip():
        raise invalid_field("name", "must not be empty")
    if await repository.get_by_slug(session, slug) is not None:
        raise Conflict(f"A tenant with slug {slug!r} exists.", code="tenant_exists")
    tenant = Tenant(slug=slug, name=name.strip())
    session.add(tenant)
    await session.flush()
    session.add(Membership(tenant_id=tenant.id, user_id=owner.id, role=Role.owner))
    audit.record(
        session,
        actor,
        "tenant.created",
        tenant_id=tenant.id,
        target_type="tenant",
        target_id=tenant.id,
        data={"owner": owner.email},
    )
    return tenant


async def get_tenant(session: AsyncSession, slug: str) -> Tenant:
    tenant = await repository.get_by_slug(session, slug)
    if tenant is None:
        raise NotFound(f"No tenant {slug!r}.", code="tenant_not_found")
    return tenant
