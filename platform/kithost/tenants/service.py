from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.audit import service as audit
from kithost.auth import repository as auth_repository
from kithost.auth.principals import Actor, TenantAccess, UserPrincipal
from kithost.errors import Conflict, InvalidInput, NotFound, invalid_field
from kithost.invitations import service as invitations
from kithost.models import Membership, Role, Tenant, User
from kithost.settings import Settings
from kithost.tenants import repository
from kithost.users import repository as users
from kithost.users.service import normalize_email

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class NewTenant:
    """A tenant just created, with the owner's invitation when the owner has no account."""

    tenant: Tenant
    owner_invitation: invitations.NewInvitation | None


async def create_tenant(
    session: AsyncSession, actor: Actor, *, slug: str, name: str, owner: User
) -> Tenant:
    """Create a tenant with ``owner`` as its first member (role owner)."""
    tenant = await _add_tenant(session, actor, slug=slug, name=name, owner_email=owner.email)
    session.add(Membership(tenant_id=tenant.id, user_id=owner.id, role=Role.owner))
    return tenant


async def open_tenant(
    session: AsyncSession,
    settings: Settings,
    admin: UserPrincipal,
    *,
    slug: str,
    name: str,
    owner_email: str,
) -> NewTenant:
    """Create a tenant for ``owner_email``: a user with that email owns it at once; anyone
    else gets an owner invitation, whose link lets them create their account."""
    try:
        email = normalize_email(owner_email)
    except InvalidInput:
        raise invalid_field("owner_email", "not a valid email address", "email") from None
    owner = await users.get_by_email(session, email)
    if owner is not None:
        tenant = await create_tenant(session, admin.actor, slug=slug, name=name, owner=owner)
        return NewTenant(tenant, None)
    tenant = await _add_tenant(session, admin.actor, slug=slug, name=name, owner_email=email)
    invitation = await invitations.create_invitation(
        session, settings, admin.actor, tenant, email=email, role=Role.owner, invited_by=admin.user
    )
    return NewTenant(tenant, invitation)


async def get_tenant(session: AsyncSession, slug: str) -> Tenant:
    tenant = await auth_repository.tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound(f"No tenant {slug!r}.", code="tenant_not_found")
    return tenant


async def list_tenants(
    session: AsyncSession, user: User, *, after: str | None, limit: int, q: str | None
) -> Sequence[Tenant]:
    """Every tenant for a platform admin, the user's own tenants for anyone else; only
    those whose slug or name holds ``q`` unless it is None."""
    member_id = None if user.is_platform_admin else user.id
    return await repository.list_tenants(
        session, member_id=member_id, after=after, limit=limit, q=q
    )


def rename_tenant(session: AsyncSession, access: TenantAccess, name: str) -> Tenant:
    tenant = access.tenant
    if name != tenant.name:
        audit.record(
            session,
            access.actor,
            "tenant.renamed",
            tenant_id=tenant.id,
            target_type="tenant",
            target_id=tenant.id,
            data={"from": tenant.name, "to": name},
        )
        tenant.name = name
    return tenant


async def _add_tenant(
    session: AsyncSession, actor: Actor, *, slug: str, name: str, owner_email: str
) -> Tenant:
    if not SLUG.fullmatch(slug):
        raise invalid_field("slug", "lowercase letters, digits and inner hyphens, at most 63")
    if not name.strip():
        raise invalid_field("name", "must not be empty")
    if await auth_repository.tenant_by_slug(session, slug) is not None:
        raise Conflict(f"A tenant with slug {slug!r} exists.", code="tenant_exists")
    tenant = Tenant(slug=slug, name=name.strip())
    session.add(tenant)
    await session.flush()
    await rls.set_tenant(session, tenant.id)  # the rest of the unit of work is the new tenant's
    audit.record(
        session,
        actor,
        "tenant.created",
        tenant_id=tenant.id,
        target_type="tenant",
        target_id=tenant.id,
        data={"owner": owner_email},
    )
    return tenant
