"""Invitations to join a tenant: a single-use, expiring link whose token is stored hashed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.audit import service as audit
from kithost.auth import repository as auth_repository
from kithost.auth.principals import Actor, Principal, TenantAccess, UserPrincipal
from kithost.auth.scopes import Scope
from kithost.errors import Forbidden, Gone, NotFound, Unauthorized, invalid_field
from kithost.invitations import repository
from kithost.invitations.tasks import send_invitation_email
from kithost.kit.tokens import hash_secret, random_token
from kithost.members import service as members
from kithost.models import ApiClient, Invitation, Role, Tenant, User
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.users import repository as users
from kithost.users.service import UserExists, create_user, normalize_email
from kithost.worker.enqueue import enqueue

INVITATION_CREATED = "invitation.created"
"""The audit action recording who made an invitation: the one record of the CLI's."""


@dataclass(frozen=True)
class NewInvitation:
    """An invitation just created, with its accept link: shown once (the token is hashed),
    and who made it, as the audit log records it."""

    invitation: Invitation
    accept_url: str
    inviter: Actor


@dataclass(frozen=True)
class Acceptance:
    """Where an accepted invitation let its user in, and as what."""

    tenant: Tenant
    role: Role


async def invite(
    session: AsyncSession, settings: Settings, access: TenantAccess, *, email: str, role: Role
) -> NewInvitation:
    """Invite ``email`` to the tenant of ``access`` with ``role`` (if ``access`` may grant it).

    A member's role, or a client unrevoked, is read again and held (for share) until the
    unit of work ends (``members.access_now``), before any other lock the invitation takes:
    their removal, demotion or revocation at that moment either comes first and the
    invitation is refused, or waits and withdraws it."""
    access = await members.access_now(session, access, Scope.members_write)
    members.check_may_grant(access, role)
    principal = access.principal
    return await create_invitation(
        session,
        settings,
        access.actor,
        access.tenant,
        email=email,
        role=role,
        invited_by=principal.user if isinstance(principal, UserPrincipal) else principal.client,
    )


async def create_invitation(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    tenant: Tenant,
    *,
    email: str,
    role: Role,
    invited_by: User | ApiClient | None,
) -> NewInvitation:
    """A new invitation; it replaces the pending ones of the same email to the tenant.
    ``invited_by`` is who vouches for it: a member (their pending invitations go when they
    are removed or given a lower role), an API client (they go when it is revoked) or
    nobody (the CLI)."""
    email = normalize_email(email)
    await repository.lock_email(session, tenant.id, email)  # two at once: one replaces the other
    replaced = await repository.delete_pending_for(session, tenant.id, email)
    token = random_token("ki_", 32)
    invitation = Invitation(
        tenant_id=tenant.id,
        email=email,
        role=role,
        token_hash=hash_secret(token),
        invited_by_id=invited_by.id if isinstance(invited_by, User) else None,
        invited_by_client_id=invited_by.id if isinstance(invited_by, ApiClient) else None,
        expires_at=utcnow() + timedelta(hours=settings.invitation_ttl_hours),
    )
    session.add(invitation)
    await session.flush()
    audit.record(
        session,
        actor,
        INVITATION_CREATED,
        tenant_id=tenant.id,
        target_type="invitation",
        target_id=invitation.id,
        data={"email": email, "role": role.value, "replaced": replaced},
    )
    accept_url = f"{settings.base_url}/admin/invite#token={token}"
    if settings.smtp_url is not None:
        enqueue(session, send_invitation_email, email, tenant.name, role.value, accept_url)
    return NewInvitation(invitation, accept_url, actor)


async def withdraw_made_by(session: AsyncSession, client: ApiClient) -> int:
    """Delete the pending invitations ``client`` made: a revoked client no longer vouches
    for whom it invited (a leaked client's admin invitations still let their holder in).
    How many; the caller holds the client's row locked (see :func:`invite`)."""
    return await repository.delete_pending_by_client(session, client.tenant_id, client.id)


async def list_pending(
    session: AsyncSession, tenant: Tenant
) -> list[tuple[Invitation, Actor | None]]:
    """The invitations not accepted yet (expired ones included, until revoked), with who
    made each: a member, an API client or the CLI."""
    invitations = await repository.list_pending(session, tenant.id)
    inviters = await auth_repository.makers(
        session, tenant.id, INVITATION_CREATED, [i.id for i in invitations]
    )
    return [(i, inviters.get(i.id)) for i in invitations]


async def revoke(session: AsyncSession, access: TenantAccess, invitation_id: uuid.UUID) -> None:
    """Delete a pending invitation, if ``access`` may take back the role it offers, as
    giving it takes (``members.check_may_grant``: an admin does not cancel an invitation
    of an owner, nor a ``members:write`` client one of any role). The caller is read again
    and held as they stand now (``members.access_now``, as :func:`invite` does): a member
    removed or demoted, or a client revoked, at that moment is refused or waited for; then
    the invitation is locked, so that of revocations at once one deletes it and the others
    find none (404)."""
    access = await members.access_now(session, access, Scope.members_write)
    invitation = await repository.lock_pending(session, access.tenant.id, invitation_id)
    if invitation is None:
        raise NotFound(f"No pending invitation {invitation_id}.", code="invitation_not_found")
    members.check_may_grant(access, invitation.role)
    await session.delete(invitation)
    audit.record(
        session,
        access.actor,
        "invitation.revoked",
        tenant_id=access.tenant.id,
        target_type="invitation",
        target_id=invitation.id,
        data={"email": invitation.email, "role": invitation.role.value},
    )


async def accept(
    session: AsyncSession,
    principal: Principal | None,
    token: str,
    *,
    password: str | None,
    name: str,
) -> Acceptance:
    """Use an invitation: as the signed-in user it was sent to, or, when no account has its
    email yet, by creating that account with ``password`` and ``name``.

    It locks the member's row (signed in), then the invitation's, as a change of the
    member's role does: of acceptances at once one uses the invitation and the others find
    it used (410 ``invitation_used``); a demotion or removal at once either withdraws it
    first (404) or comes after and sees the role it gave."""
    async with rls.bypassing(session, rls.Bypass.credentials):
        found = await repository.get_by_token_hash(session, hash_secret(token))
    if found is None:
        raise _not_found()
    await rls.set_tenant(session, found.tenant_id)
    if isinstance(principal, UserPrincipal):
        await members.lock_member(session, found.tenant_id, principal.user.id)
    invitation = await repository.lock(session, found.id)
    if invitation is None:  # revoked, replaced or withdrawn meanwhile
        raise _not_found()
    if invitation.accepted_at is not None:
        raise _used()
    if invitation.expires_at <= utcnow():
        raise Gone("The invitation has expired.", code="invitation_expired")
    user = await _invitee(session, invitation, principal, password=password, name=name)
    if not await repository.mark_accepted(session, invitation.id, user.id, utcnow()):
        raise _used()
    actor = Actor("user", str(user.id))
    role = await members.join(session, actor, invitation.tenant_id, user.id, invitation.role)
    audit.record(
        session,
        actor,
        "invitation.accepted",
        tenant_id=invitation.tenant_id,
        target_type="invitation",
        target_id=invitation.id,
    )
    return Acceptance(await repository.tenant_of(session, invitation), role)


def _not_found() -> NotFound:
    message = "No such invitation, or it was revoked or replaced."
    return NotFound(message, code="invitation_not_found")


def _used() -> Gone:
    return Gone("The invitation was already used.", code="invitation_used")


async def _invitee(
    session: AsyncSession,
    invitation: Invitation,
    principal: Principal | None,
    *,
    password: str | None,
    name: str,
) -> User:
    if isinstance(principal, UserPrincipal):
        if principal.user.email != invitation.email:
            raise Forbidden(
                "The invitation was sent to another email address.",
                code="invitation_email_mismatch",
            )
        return principal.user
    if principal is not None or await users.get_by_email(session, invitation.email) is not None:
        raise _sign_in()
    if password is None:
        raise invalid_field("password", "required to create your account")
    actor = Actor("invitation", str(invitation.id))
    try:
        new = await create_user(session, actor, invitation.email, name=name, password=password)
    except UserExists:
        # Made at this moment by the acceptance of another invitation of the email (another
        # tenant's): answered as it would be a moment later, never with that account,
        # whose password is not the one given here.
        raise _sign_in() from None
    return new.user


def _sign_in() -> Unauthorized:
    return Unauthorized(
        "Sign in as the invited user to accept the invitation.", code="unauthenticated"
    )
