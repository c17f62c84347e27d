"""Client error groups over HTTP: list, detail, resolve (mounted by ``analytics.endpoints``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from kithost.analytics.errors import schemas, service
from kithost.auth.dependencies import AnalyticsRead, WidgetsWrite
from kithost.db import DbSession
from kithost.kit.schemas import TENANT_ERRORS, problems

router = APIRouter()


def _group_out(view: service.GroupView) -> schemas.ErrorGroupOut:
    fields = schemas.ErrorGroupOut.model_fields.keys() - {"affected_end_users"}
    return schemas.ErrorGroupOut(
        **{name: getattr(view.group, name) for name in fields},
        affected_end_users=view.affected_end_users,
    )


@router.get(
    "/errors",
    summary="Client error groups, latest occurrence first",
    responses=problems(*TENANT_ERRORS),
)
async def list_error_groups(
    access: AnalyticsRead, session: DbSession, query: Annotated[schemas.ErrorGroupQuery, Query()]
) -> schemas.ErrorGroupPage:
    page = await service.list_error_groups(
        session,
        access.tenant,
        status=query.status,
        widget_id=query.widget,
        cursor=query.cursor,
        limit=query.limit,
    )
    return schemas.ErrorGroupPage(
        groups=[_group_out(v) for v in page.groups], next_cursor=page.next_cursor
    )


@router.get("/errors/{id}", summary="One client error group", responses=problems(*TENANT_ERRORS))
async def get_error_group(
    id: uuid.UUID, access: AnalyticsRead, session: DbSession
) -> schemas.ErrorGroupOut:
    return _group_out(await service.get_error_group(session, access.tenant, id))


@router.post(
    "/errors/{id}/resolve",
    summary="Mark a client error group resolved (a later occurrence reopens it)",
    responses=problems(*TENANT_ERRORS),
)
async def resolve_error_group(
    id: uuid.UUID, access: WidgetsWrite, session: DbSession
) -> schemas.ErrorGroupOut:
    return _group_out(await service.resolve_error_group(session, access.tenant, access.actor, id))
