from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import schemas, service
from kithost.audit.repository import AuditFilter
from kithost.auth.dependencies import MembersRead, PlatformAdmin
from kithost.db import DbSession
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.models import Tenant

router = APIRouter(prefix="/tenants/{tenant}/audit", tags=["audit"])
platform_router = APIRouter(prefix="/audit", tags=["audit"])


@router.get(
    "",
    summary="List the tenant's audit log, newest first",
    description="Every change made in the tenant, by whom and in which request. Pages follow "
    "`next_cursor`; entries added meanwhile never shift a page.",
    responses=problems(*TENANT_ERRORS),
)
async def list_audit_entries(
    access: MembersRead, session: DbSession, query: Annotated[schemas.AuditQuery, Query()]
) -> schemas.AuditPage:
    return await _page(session, access.tenant, query)


@platform_router.get(
    "",
    summary="List the platform's audit log, newest first",
    description="What was done to no single tenant: users made, passwords changed, tenants "
    "deleted, secrets re-encrypted. Platform admins only; pages as a tenant's log does.",
    responses=problems(401, 403, 422),
)
async def list_platform_audit_entries(
    admin: PlatformAdmin, session: DbSession, query: Annotated[schemas.AuditQuery, Query()]
) -> schemas.AuditPage:
    return await _page(session, None, query)


async def _page(
    session: AsyncSession, tenant: Tenant | None, query: schemas.AuditQuery
) -> schemas.AuditPage:
    where = AuditFilter(**query.model_dump(exclude={"cursor", "limit"}))
    page = await service.list_entries(
        session, tenant, where, cursor=query.cursor, limit=query.limit
    )
    return schemas.AuditPage.model_validate(page)
