from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.audit import service as audit
from kithost.auth import repository as auth_repository
from kithost.auth.principals import Actor, TenantAccess, UserPrincipal
from kithost.auth.roles import acts_as_owner
from kithost.auth.scopes import Scope
from kithost.errors import Conflict, Forbidden, InvalidInput, NotFound, invalid_field
from kithost.invitations import service as invitations
from kithost.members import service as members
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


async def rename_tenant(session: AsyncSession, access: TenantAccess, name: str) -> Tenant:
    """Give the tenant ``name``, the caller read again and held as they stand now
    (``members.access_now``): a member removed or demoted, or a client revoked, at that
    moment is refused or waited for. The tenant's row is then read as committed and locked
    for the change (``FOR NO KEY UPDATE``: what only holds the tenant, or adds its rows,
    goes on), so that of renames at once each records the name it replaces."""
    access = await members.access_now(session, access, Scope.members_write)
    tenant = access.tenant
    await session.refresh(tenant, with_for_update={"key_share": True})
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


TenantData = Callable[[AsyncSession, Tenant], Awaitable[object]]
"""Deletes what a package above this one keeps of a tenant beyond the rows the database
deletes with it (blobs, OpenAI's copies of its knowledge), in the caller's unit of work:
what runs outside the database goes behind the commit (a task)."""
_TENANT_DATA: list[TenantData] = []


def owns_tenant_data(delete: TenantData) -> None:
    """Have ``delete`` run as a tenant is deleted, before its rows go (``chat``,
    ``conversations`` and ``knowledge`` register as they are imported)."""
    _TENANT_DATA.append(delete)


async def delete_tenant(session: AsyncSession, access: TenantAccess, confirm: str) -> None:
    """:func:`remove_tenant`, by one of its owners or a platform admin, never an API client.
    An owner's role is read again once the tenant's owners are locked
    (``members.owners_first``): an owner demoted or removed at that moment deleted the
    tenant all the same, their role read before the change committed."""
    if acts_as_owner(access):
        access = await members.owners_first(session, access, Scope.members_write)
    if not acts_as_owner(access):
        raise Forbidden(
            "Only the tenant's owners and platform admins may delete it.", code="owner_required"
        )
    await remove_tenant(session, access.actor, access.tenant, confirm)


async def remove_tenant(session: AsyncSession, actor: Actor, tenant: Tenant, confirm: str) -> None:
    """Delete the tenant and everything it holds: its widgets stop answering, its members
    lose it (their accounts stay), its API clients their tokens; ``confirm`` must be its
    slug. The platform's audit log keeps the deletion (the tenant's own log goes with it).
    Who may is the caller's to check (:func:`delete_tenant`; the operator's command).

    The rows go in the order deletions take them (CONTRIBUTING): the tenant's owners, its
    other members, its API clients and its invitations first (``members.hold_everyone``:
    what they are doing ends first), then what registered (the chat threads, …), then the
    tenant's row."""
    if confirm != tenant.slug:
        raise invalid_field("confirm", "the tenant's slug, to confirm", "confirmation")
    await members.hold_everyone(session, tenant.id)
    for delete in _TENANT_DATA:
        await delete(session, tenant)
    audit.record(
        session,
        actor,
        "tenant.deleted",
        target_type="tenant",
        target_id=tenant.id,
        data={"slug": tenant.slug, "name": tenant.name},
    )
    # The database deletes what the tenant holds (foreign keys cascade). None: another
    # request deleted it meanwhile (this one waited for its lock), and this one fails whole.
    if not await repository.delete_tenant(session, tenant.id):
        raise NotFound(f"No tenant {tenant.slug!r}.", code="tenant_not_found")
