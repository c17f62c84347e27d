from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from kithost.audit import schemas, service
from kithost.audit.repository import AuditFilter
from kithost.auth.dependencies import MembersRead
from kithost.db import DbSession
from kithost.kit.schemas import TENANT_ERRORS, problems

router = APIRouter(prefix="/tenants/{tenant}/audit", tags=["audit"])


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
    page = await service.list_entries(
        session,
        access.tenant,
        AuditFilter(**query.model_dump(exclude={"cursor", "limit"})),
        cursor=query.cursor,
        limit=query.limit,
    )
    return schemas.AuditPage.model_validate(page)
