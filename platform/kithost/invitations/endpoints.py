from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from kithost.auth.dependencies import MembersRead, MembersWrite, OptionalPrincipal
from kithost.db import DbSession
from kithost.invitations import schemas, service
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.members.schemas import TenantMembership
from kithost.state import AppSettings

router = APIRouter(tags=["invitations"])
TENANT_INVITATIONS = "/tenants/{tenant}/invitations"


@router.post(
    TENANT_INVITATIONS,
    summary="Invite someone to the tenant",
    description="The accept link is shown only in this response. Only owners invite owners. "
    "A new invitation replaces the pending ones of the same email.",
    status_code=status.HTTP_201_CREATED,
    responses=problems(*TENANT_ERRORS),
)
async def invite(
    access: MembersWrite,
    session: DbSession,
    settings: AppSettings,
    body: schemas.InvitationCreate,
) -> schemas.InvitationCreated:
    new = await service.invite(session, settings, access, email=body.email, role=body.role)
    return schemas.InvitationCreated.of(new)


@router.get(
    TENANT_INVITATIONS,
    summary="List the pending invitations",
    description="Invitations not accepted yet, expired ones included until revoked, each "
    "with who made it.",
    responses=problems(*TENANT_ERRORS),
)
async def list_invitations(access: MembersRead, session: DbSession) -> list[schemas.Invitation]:
    invitations = await service.list_pending(session, access.tenant)
    return [schemas.Invitation.of(i, inviter) for i, inviter in invitations]


@router.delete(
    TENANT_INVITATIONS + "/{id}",
    summary="Revoke a pending invitation",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS),
)
async def revoke_invitation(access: MembersWrite, session: DbSession, id: uuid.UUID) -> None:
    await service.revoke(session, access, id)


@router.post(
    "/invitations/accept",
    summary="Accept an invitation",
    description="Signed in: as the user the invitation was sent to. Not signed in, when no "
    "account has the invited email yet: `password` (and `name`) create it.",
    responses=problems(401, 403, 404, 410, 422),
)
async def accept_invitation(
    principal: OptionalPrincipal, session: DbSession, body: schemas.InvitationAccept
) -> TenantMembership:
    password = body.password.get_secret_value() if body.password is not None else None
    accepted = await service.accept(
        session, principal, body.token, password=password, name=body.name
    )
    return TenantMembership.model_validate(accepted)
