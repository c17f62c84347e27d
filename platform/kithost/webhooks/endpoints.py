from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from kithost.auth.dependencies import WebhooksWrite
from kithost.db import DbSession
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.state import AppSecretBox, AppSettings
from kithost.webhooks import repository, schemas, service

router = APIRouter(prefix="/tenants/{tenant}/webhooks", tags=["webhooks"])
ERRORS = problems(*TENANT_ERRORS, 404)


@router.post(
    "",
    summary="Add a webhook endpoint",
    description="The signing secret (Standard Webhooks, `whsec_…`) is shown only here.",
    status_code=status.HTTP_201_CREATED,
    responses=problems(*TENANT_ERRORS),
)
async def create_endpoint(
    access: WebhooksWrite,
    session: DbSession,
    box: AppSecretBox,
    settings: AppSettings,
    body: schemas.EndpointCreate,
) -> schemas.EndpointCreated:
    endpoint, secret = await service.create_endpoint(
        session, box, settings.outbound_policy, access, body
    )
    [shown] = await service.shown(session, access.tenant.id, [endpoint])
    return schemas.EndpointCreated(endpoint=shown, secret=secret)


@router.get("", summary="List the webhook endpoints", responses=problems(*TENANT_ERRORS))
async def list_endpoints(access: WebhooksWrite, session: DbSession) -> list[schemas.Endpoint]:
    endpoints = await repository.endpoints(session, access.tenant.id)
    return await service.shown(session, access.tenant.id, endpoints)


@router.patch("/{id}", summary="Change a webhook endpoint", responses=ERRORS)
async def update_endpoint(
    access: WebhooksWrite,
    session: DbSession,
    settings: AppSettings,
    id: uuid.UUID,
    body: schemas.EndpointUpdate,
) -> schemas.Endpoint:
    endpoint = await service.update_endpoint(session, settings.outbound_policy, access, id, body)
    [shown] = await service.shown(session, access.tenant.id, [endpoint])
    return shown


@router.delete(
    "/{id}",
    summary="Delete a webhook endpoint",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS,
)
async def delete_endpoint(access: WebhooksWrite, session: DbSession, id: uuid.UUID) -> None:
    await service.delete_endpoint(session, access, id)


@router.post(
    "/{id}/rotate-secret",
    summary="Give the endpoint a new signing secret",
    description="The new secret is shown only here. For 24 hours deliveries carry two "
    "signatures in `webhook-signature` (space-separated, as Standard Webhooks allows): one "
    "with the new secret, one with the old, so the receiver can switch secrets in that time.",
    responses=ERRORS,
)
async def rotate_secret(
    access: WebhooksWrite, session: DbSession, box: AppSecretBox, id: uuid.UUID
) -> schemas.SecretRotated:
    secret, until = await service.rotate_secret(session, box, access, id)
    return schemas.SecretRotated(secret=secret, old_secret_until=until)


@router.post(
    "/{id}/test",
    summary="Send the endpoint a test event",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ERRORS,
)
async def send_test(access: WebhooksWrite, session: DbSession, id: uuid.UUID) -> schemas.Delivery:
    delivery = await service.send_test(session, access, id)
    await session.flush()
    return schemas.Delivery.model_validate(delivery)


@router.get(
    "/{id}/deliveries",
    summary="The endpoint's delivery log, newest first",
    description="Pages follow `next_cursor`; deliveries added meanwhile never shift a page.",
    responses=ERRORS,
)
async def list_deliveries(
    access: WebhooksWrite,
    session: DbSession,
    id: uuid.UUID,
    cursor: Annotated[
        str | None, Query(max_length=100, description="The `next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.DeliveryPage:
    page = await service.list_deliveries(session, access, id, cursor=cursor, limit=limit)
    return schemas.DeliveryPage.model_validate(page)


@router.post(
    "/{id}/deliveries/{delivery_id}/replay",
    summary="Send a delivery's event again",
    description="A new delivery with the same `webhook-id` (receivers deduplicate on it).",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ERRORS,
)
async def replay(
    access: WebhooksWrite, session: DbSession, id: uuid.UUID, delivery_id: uuid.UUID
) -> schemas.Delivery:
    delivery = await service.replay(session, access, id, delivery_id)
    await session.flush()
    return schemas.Delivery.model_validate(delivery)
