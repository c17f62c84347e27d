"""Members: users' roles in a tenant, under the rules that keep a tenant governable."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth import repository as auth_repository
from kithost.auth.principals import Actor, ClientPrincipal, TenantAccess
from kithost.auth.roles import may_grant, outranks, scopes_of
from kithost.auth.scopes import Scope
from kithost.errors import Conflict, FieldError, Forbidden, NotFound, Unauthorized
from kithost.members import repository
from kithost.members.repository import MemberRow
from kithost.models import ApiClient, Membership, Role, Tenant


def check_may_grant(access: TenantAccess, role: Role) -> None:
    """Refuse unless ``access`` may give or take ``role``: only owners and platform admins
    make or unmake owners (API clients never do), and nobody gives or takes a role whose
    scopes they do not all hold themselves (403 ``role_too_high`` on ``role``)."""
    if not may_grant(access, role):
        raise Forbidden("Only owners may give or take the owner role.", code="owner_role_required")
    missing = sorted(scopes_of(role, access.tenant) - access.scopes)
    if missing:
        message = f"needs scopes you do not hold: {' '.join(missing)}"
        raise Forbidden(
            f"Cannot give or take the {role.value} role: it {message}.",
            code="role_too_high",
            errors=[FieldError(field="role", message=message, type="role_too_high")],
        )


async def access_now(session: AsyncSession, access: TenantAccess, needs: Scope) -> TenantAccess:
    """``access`` as the caller stands now, held until the unit of work ends: a member's
    role (its row locked for share; 404 ``tenant_not_found`` once they are no longer a
    member, 403 ``insufficient_scope`` once their role lacks ``needs``), an API client not
    revoked (its row locked for share; 401 ``invalid_token`` once it is). A request's access
    is read before it waits for its locks, so without this a member removed or demoted, or
    a client revoked, meanwhile still acted: two admins removing each other at once both
    succeeded, an admin removed at the moment they invited someone left that invitation
    pending, and one removed at the moment they made an API client kept it unnamed by the
    removal (``clients_kept``). A client's scopes and a platform admin's are ``access``'s
    as it came."""
    principal = access.principal
    if isinstance(principal, ClientPrincipal):
        await _hold_client(session, principal.client)
        return access
    if principal.user.is_platform_admin:
        return access
    tenant = access.tenant
    membership = await repository.lock_membership(session, tenant.id, principal.user.id, share=True)
    if membership is None:
        raise NotFound(f"No tenant {tenant.slug!r}.", code="tenant_not_found")
    now = TenantAccess(tenant, principal, scopes_of(membership.role, tenant), membership.role)
    if needs not in now.scopes:
        raise Forbidden(f"Missing scope: {needs.value}.", code="insufficient_scope")
    return now


async def owners_first(session: AsyncSession, access: TenantAccess, needs: Scope) -> TenantAccess:
    """:func:`access_now`, after locking the tenant's owners (until the unit of work ends):
    what changes or relies on who owns the tenant takes them first, so that it waits for
    the change of members before it (and sees the caller's role that change left), and
    none waits for another that waits for it."""
    await repository.lock_owner_ids(session, access.tenant.id)
    return await access_now(session, access, needs)


async def hold_everyone(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Lock the tenant's owners, then its other members, then its API clients, then its
    invitations, until the unit of work ends: the tenant's deletion does, before it takes
    the tenant's row. What a member or a client does holds them first (:func:`access_now`),
    and an acceptance its member and its invitation, and then writes rows that need the
    tenant's row (an audit entry, at least), so the deletion waits for it before taking
    that row: taking it first, it waited for their rows to cascade while their work waited
    for the tenant's row (a deadlock, 503)."""
    await repository.lock_owner_ids(session, tenant_id)
    await repository.lock_members_clients_and_invitations(session, tenant_id)


async def _hold_client(session: AsyncSession, client: ApiClient) -> None:
    """Refuse a client revoked since its request was authenticated, and hold it unrevoked
    until the unit of work ends: its revocation waits, then sees (and withdraws, or names)
    what it made."""
    locked = await auth_repository.lock_client(session, client.tenant_id, client.id, share=True)
    if locked is None or locked.revoked_at is not None:
        raise Unauthorized(
            "The access token's client is revoked.",
            code="invalid_token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


async def list_members(session: AsyncSession, tenant: Tenant) -> Sequence[MemberRow]:
    return await repository.list_members(session, tenant.id)


async def change_role(
    session: AsyncSession, access: TenantAccess, user_id: uuid.UUID, role: Role
) -> MemberRow:
    access, membership = await _locked_membership(session, access, user_id)
    check_may_grant(access, membership.role)
    check_may_grant(access, role)
    withdrawn = (
        await _withdraw_invitations(session, membership) if outranks(membership.role, role) else 0
    )
    await _set_role(session, access.actor, membership, role, withdrawn)
    member = await repository.get_member(session, access.tenant.id, user_id)
    assert member is not None
    return member


async def remove_member(session: AsyncSession, access: TenantAccess, user_id: uuid.UUID) -> None:
    access, membership = await _locked_membership(session, access, user_id)
    check_may_grant(access, membership.role)
    if membership.role is Role.owner:
        await _keep_another_owner(session, membership)
    withdrawn = await _withdraw_invitations(session, membership)
    made = await auth_repository.live_clients_made_by(
        session, access.tenant.id, Actor("user", str(user_id))
    )
    await session.delete(membership)
    audit.record(
        session,
        access.actor,
        "member.removed",
        tenant_id=access.tenant.id,
        target_type="user",
        target_id=user_id,
        data={"role": membership.role.value} | _withdrawn(withdrawn) | clients_kept(made),
    )


async def _withdraw_invitations(session: AsyncSession, membership: Membership) -> int:
    """Delete the pending invitations the member made and those sent to them: a member
    removed or given a lower role no longer vouches for whom they invited (an admin removed
    at once still brought in a second account of theirs as admin), nor gets back in or up by
    an invitation sent before (a demotion answered 200 was undone by the member accepting
    an invitation as admin)."""
    return await repository.delete_pending_invitations_of(
        session, membership.tenant_id, membership.user_id
    )


def clients_kept(clients: Sequence[ApiClient]) -> dict[str, list[str]]:
    """What the audit entry of a removal (of a member, or a client's revocation) says of the
    live API clients they made: their ``client_id``s. A client belongs to the tenant and
    keeps working without its maker, who may still hold its secret: the entry says which
    ones to revoke if that is not wanted."""
    return {"clients_kept": [c.client_id for c in clients]} if clients else {}


def _withdrawn(count: int) -> dict[str, int]:
    return {"invitations_withdrawn": count} if count else {}


async def join(
    session: AsyncSession, actor: Actor, tenant_id: uuid.UUID, user_id: uuid.UUID, role: Role
) -> Role:
    """Make the user a member with ``role``, or give a member ``role`` if it is higher than
    theirs: an invitation never lowers a role (an admin cannot demote an owner, and could
    by inviting them as a viewer). The member's role now."""
    membership = await repository.lock_membership(session, tenant_id, user_id)
    if membership is not None:
        if outranks(role, membership.role):
            await _set_role(session, actor, membership, role)
        return membership.role
    session.add(Membership(tenant_id=tenant_id, user_id=user_id, role=role))
    audit.record(
        session,
        actor,
        "member.added",
        tenant_id=tenant_id,
        target_type="user",
        target_id=user_id,
        data={"role": role.value},
    )
    return role


async def lock_member(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Lock the user's membership of the tenant, if they have one, until the unit of work
    ends (PostgreSQL: ``SELECT … FOR UPDATE``). An invitation's acceptance takes it before it
    locks the invitation, so that it and a change of the member's role run one after the
    other, each seeing what the other did."""
    await repository.lock_membership(session, tenant_id, user_id)


async def _locked_membership(
    session: AsyncSession, access: TenantAccess, user_id: uuid.UUID
) -> tuple[TenantAccess, Membership]:
    """The caller's access as it stands now (:func:`access_now`) and the membership to
    change or remove, locked until the unit of work ends, as it is committed now. Changes
    of members lock in one order, so that none waits for another that waits for it: the
    tenant's owners (two owners demoting each other: the last owner check; every change of
    members waits there for the one before, so the caller's role read next is the one it
    left), then the caller's membership (for share), then the member, then the
    invitations (the withdrawal; an acceptance locks the member, then its invitation)."""
    tenant = access.tenant
    access = await owners_first(session, access, Scope.members_write)
    membership = await repository.lock_membership(session, tenant.id, user_id)
    if membership is None:
        raise NotFound(f"No member {user_id} in this tenant.", code="member_not_found")
    return access, membership


async def _set_role(
    session: AsyncSession, actor: Actor, membership: Membership, role: Role, withdrawn: int = 0
) -> None:
    if role is membership.role:
        return
    if membership.role is Role.owner:
        await _keep_another_owner(session, membership)
    audit.record(
        session,
        actor,
        "member.role_changed",
        tenant_id=membership.tenant_id,
        target_type="user",
        target_id=membership.user_id,
        data={"from": membership.role.value, "to": role.value} | _withdrawn(withdrawn),
    )
    membership.role = role


async def _keep_another_owner(session: AsyncSession, owner: Membership) -> None:
    """Refuse to remove or demote ``owner`` when nobody else owns the tenant."""
    if await repository.lock_owner_ids(session, owner.tenant_id) == [owner.user_id]:
        raise Conflict("A tenant keeps at least one owner.", code="last_owner")
