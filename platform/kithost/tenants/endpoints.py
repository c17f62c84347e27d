from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from kithost.auth.dependencies import AnyTenantAccess, CurrentUser, MembersWrite, PlatformAdmin
from kithost.db import DbSession
from kithost.invitations.schemas import InvitationCreated
from kithost.kit.schemas import TENANT_ERRORS, SearchText, problems
from kithost.members.schemas import Tenant
from kithost.state import AppSettings
from kithost.tenants import schemas, service

router = APIRouter(prefix="/tenants", tags=["tenants"])


@router.post(
    "",
    summary="Create a tenant for an owner",
    description="A user with `owner_email` owns the new tenant at once. Anyone else gets an "
    "owner invitation: its link, shown only in this response, creates their account.",
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
)
async def create_tenant(
    admin: PlatformAdmin, session: DbSession, settings: AppSettings, body: schemas.TenantCreate
) -> schemas.TenantCreated:
    new = await service.open_tenant(
        session, settings, admin, slug=body.slug, name=body.name, owner_email=body.owner_email
    )
    invited = new.owner_invitation
    return schemas.TenantCreated(
        tenant=Tenant.model_validate(new.tenant),
        owner_invitation=None if invited is None else InvitationCreated.of(invited),
    )


@router.get(
    "",
    summary="List tenants by slug",
    description="Every tenant for a platform admin, the signed-in user's tenants otherwise. "
    "`q`: only the tenants whose slug or name holds that text, in any case.",
    responses=problems(401, 422),
)
async def list_tenants(
    user: CurrentUser,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[str | None, Query(description="List the tenants after this slug.")] = None,
    q: Annotated[SearchText | None, Query(description="Text the slug or name holds.")] = None,
) -> list[Tenant]:
    tenants = await service.list_tenants(session, user.user, after=after, limit=limit, q=q)
    return [Tenant.model_validate(t) for t in tenants]


@router.get("/{tenant}", summary="Get a tenant", responses=problems(*TENANT_ERRORS))
async def get_tenant(access: AnyTenantAccess) -> Tenant:
    return Tenant.model_validate(access.tenant)


@router.patch("/{tenant}", summary="Rename a tenant", responses=problems(*TENANT_ERRORS))
async def update_tenant(
    access: MembersWrite, session: DbSession, body: schemas.TenantUpdate
) -> Tenant:
    return Tenant.model_validate(await service.rename_tenant(session, access, body.name))


@router.delete(
    "/{tenant}",
    summary="Delete a tenant and everything it holds",
    description="Its widgets, conversations, analytics, knowledge (OpenAI's copies too, "
    "behind the commit), webhooks, API clients, invitations and audit log; its members keep "
    "their accounts. Its owners and platform admins only (never an API client); `confirm` "
    "is the tenant's slug. The platform's audit log records it.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS),
)
async def delete_tenant(
    access: AnyTenantAccess,
    session: DbSession,
    confirm: Annotated[str, Query(max_length=63, description="The tenant's slug.")],
) -> None:
    await service.delete_tenant(session, access, confirm)
