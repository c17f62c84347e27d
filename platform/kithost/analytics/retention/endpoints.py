"""Retention and erasure over HTTP: the tenant's retention setting and end-user deletion
(mounted by ``analytics.endpoints``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from kithost.analytics.retention import schemas, service
from kithost.auth.dependencies import AnalyticsRead, EndUserDataWrite
from kithost.db import DbSession
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.state import AppSettings

router = APIRouter()


@router.post(
    "/end-user-deletions",
    summary="Delete one end user's data: events, error occurrences, chat threads and files",
    responses=problems(*TENANT_ERRORS),
)
async def delete_end_user(
    access: EndUserDataWrite,
    session: DbSession,
    settings: AppSettings,
    body: Annotated[schemas.EndUserDeletion, Body()],
) -> schemas.EndUserDeleted:
    removed = await service.delete_end_user(
        session, access.tenant, access.actor, body.end_user, settings.keys()
    )
    return schemas.EndUserDeleted(end_user=body.end_user, removed=removed)


@router.get("/settings", summary="Analytics settings", responses=problems(*TENANT_ERRORS))
async def get_settings(access: AnalyticsRead, session: DbSession) -> schemas.AnalyticsSettingsOut:
    return schemas.AnalyticsSettingsOut(
        retention_days=await service.retention(session, access.tenant)
    )


@router.put(
    "/settings",
    summary="Change analytics settings (retention of raw events, error samples, chat data)",
    responses=problems(*TENANT_ERRORS),
)
async def put_settings(
    access: EndUserDataWrite,
    session: DbSession,
    body: Annotated[schemas.AnalyticsSettingsUpdate, Body()],
) -> schemas.AnalyticsSettingsOut:
    days = await service.set_retention(session, access.tenant, access.actor, body.retention_days)
    return schemas.AnalyticsSettingsOut(retention_days=days)
