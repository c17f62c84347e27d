"""Members: users' roles in a tenant, under the rules that keep a tenant governable."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth.principals import Actor, TenantAccess
from kithost.auth.roles import may_grant, outranks, scopes_of
from kithost.errors import Conflict, FieldError, Forbidden, NotFound
from kithost.members import repository
from kithost.members.repository import MemberRow
from kithost.models import Membership, Role, Tenant


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


async def list_members(session: AsyncSession, tenant: Tenant) -> Sequence[MemberRow]:
    return await repository.list_members(session, tenant.id)


async def change_role(
    session: AsyncSession, access: TenantAccess, user_id: uuid.UUID, role: Role
) -> MemberRow:
    membership = await _locked_membership(session, access.tenant, user_id)
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
    membership = await _locked_membership(session, access.tenant, user_id)
    check_may_grant(access, membership.role)
    if membership.role is Role.owner:
        await _keep_another_owner(session, membership)
    withdrawn = await _withdraw_invitations(session, membership)
    await session.delete(membership)
    audit.record(
        session,
        access.actor,
        "member.removed",
        tenant_id=access.tenant.id,
        target_type="user",
        target_id=user_id,
        data={"role": membership.role.value} | _withdrawn(withdrawn),
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
    session: AsyncSession, tenant: Tenant, user_id: uuid.UUID
) -> Membership:
    """The membership to change or remove, locked until the unit of work ends, as it is
    committed now. Changes of members lock in one order, so that none waits for another
    that waits for it: the tenant's owners (two owners demoting each other: the last owner
    check), then the member, then the invitations (the withdrawal; an acceptance locks the
    member, then its invitation)."""
    await repository.lock_owner_ids(session, tenant.id)
    membership = await repository.lock_membership(session, tenant.id, user_id)
    if membership is None:
        raise NotFound(f"No member {user_id} in this tenant.", code="member_not_found")
    return membership


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
