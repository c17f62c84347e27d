from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from kithost.auth.dependencies import ClientsWrite
from kithost.clients import schemas, service
from kithost.db import DbSession
from kithost.kit.schemas import TENANT_ERRORS, problems

router = APIRouter(prefix="/tenants/{tenant}/clients", tags=["clients"])


@router.post(
    "",
    summary="Create an API client",
    description="The secret is shown only in this response. A client gets only scopes that "
    "its creator holds.",
    status_code=status.HTTP_201_CREATED,
    responses=problems(*TENANT_ERRORS),
)
async def create_client(
    access: ClientsWrite, session: DbSession, body: schemas.ClientCreate
) -> schemas.ClientCreated:
    new = await service.register_client(session, access, name=body.name, scopes=body.scopes)
    made = schemas.Client.of(new.client, access.actor)
    return schemas.ClientCreated.model_validate({"client": made, "secret": new.secret})


@router.get(
    "",
    summary="List the API clients",
    description="Revoked ones included, each with who made it.",
    responses=problems(*TENANT_ERRORS),
)
async def list_clients(access: ClientsWrite, session: DbSession) -> list[schemas.Client]:
    clients = await service.list_clients(session, access.tenant)
    return [schemas.Client.of(c, maker) for c, maker in clients]


@router.delete(
    "/{id}",
    summary="Revoke an API client",
    description="Its access tokens stop working at once. Revoking twice is not an error. "
    "The clients it made keep working (the audit entry lists them).",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS),
)
async def revoke_client(access: ClientsWrite, session: DbSession, id: uuid.UUID) -> None:
    await service.revoke_client(session, access, id)
