from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from kithost.auth.dependencies import MembersRead, MembersWrite
from kithost.db import DbSession
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.members import schemas, service

router = APIRouter(prefix="/tenants/{tenant}/members", tags=["members"])


@router.get("", summary="List the tenant's members", responses=problems(*TENANT_ERRORS))
async def list_members(access: MembersRead, session: DbSession) -> list[schemas.Member]:
    members = await service.list_members(session, access.tenant)
    return [schemas.Member.model_validate(m) for m in members]


@router.patch(
    "/{user_id}",
    summary="Change a member's role",
    description="Only owners give or take the owner role; the last owner keeps it.",
    responses=problems(*TENANT_ERRORS, 409),
)
async def change_role(
    access: MembersWrite, session: DbSession, user_id: uuid.UUID, body: schemas.MemberUpdate
) -> schemas.Member:
    member = await service.change_role(session, access, user_id, body.role)
    return schemas.Member.model_validate(member)


@router.delete(
    "/{user_id}",
    summary="Remove a member from the tenant",
    description="Only owners remove owners; the last owner cannot be removed.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS, 409),
)
async def remove_member(access: MembersWrite, session: DbSession, user_id: uuid.UUID) -> None:
    await service.remove_member(session, access, user_id)
