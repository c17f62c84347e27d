from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from kithost.auth.dependencies import SessionsMint, WidgetsRead, WidgetsWrite
from kithost.db import DbSession
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.secrets import schemas, service
from kithost.state import AppSecretBox

router = APIRouter(prefix="/tenants/{tenant}", tags=["secrets"])
OPENAI_KEY = "/openai-key"
IDENTITY = "/widgets/{id}/identity-secret"
MODEL_KEY = "/widgets/{id}/model-key"
TOOL_SECRET = "/widgets/{id}/tool-secret"  # noqa: S105 (a path)


@router.get(
    OPENAI_KEY,
    summary="Tell whether the tenant has an OpenAI API key",
    responses=problems(*TENANT_ERRORS),
)
async def get_openai_key(access: WidgetsRead) -> schemas.OpenAIKey:
    return schemas.OpenAIKey.model_validate(service.openai_key(access.tenant))


@router.put(
    OPENAI_KEY,
    summary="Set the tenant's OpenAI API key",
    description="The key the tenant's widgets call OpenAI with. It is stored encrypted and "
    "never shown again: reads tell only whether one is set and its last four characters.",
    responses=problems(*TENANT_ERRORS),
)
async def set_openai_key(
    access: WidgetsWrite, session: DbSession, box: AppSecretBox, body: schemas.OpenAIKeyUpdate
) -> schemas.OpenAIKey:
    key = await service.set_openai_key(session, box, access, body.api_key)
    return schemas.OpenAIKey.model_validate(key)


@router.delete(
    OPENAI_KEY,
    summary="Remove the tenant's OpenAI API key",
    description="Removing it when there is none is not an error.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS),
)
async def remove_openai_key(access: WidgetsWrite, session: DbSession) -> None:
    await service.remove_openai_key(session, access)


@router.post(
    IDENTITY,
    summary="Generate a new identity secret for a widget",
    description="The secret (HS256) with which the tenant's backend signs its visitors' "
    "identity tokens. It is shown only in this response. Calling again rotates it: the old "
    "secret stops working at once, so tokens it signed are refused from then on. Needs "
    "`sessions:mint`: whoever holds the secret signs in as any end user.",
    responses=problems(*TENANT_ERRORS),
)
async def rotate_identity_secret(
    access: SessionsMint, session: DbSession, box: AppSecretBox, id: uuid.UUID
) -> schemas.IdentitySecret:
    new = await service.rotate_identity_secret(session, box, access, id)
    return schemas.IdentitySecret.model_validate(new)


@router.delete(
    IDENTITY,
    summary="Remove a widget's identity secret",
    description="Identity tokens are refused from then on. Removing it when there is none is "
    "not an error.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS),
)
async def remove_identity_secret(access: SessionsMint, session: DbSession, id: uuid.UUID) -> None:
    await service.remove_identity_secret(session, access, id)


@router.put(
    MODEL_KEY,
    summary="Set a widget's model key",
    description="The API key Kithost sends to the endpoint the widget's `agent.base_url` "
    "names (a self-hosted model, a gateway), and only to the endpoint it is set for: "
    "`base_url`, else the draft's. Such a widget gets no other key: neither the tenant's "
    "OpenAI key nor the platform's goes to a URL a tenant chose. Stored encrypted and never "
    "shown again: the widget tells only `has_model_key`.",
    responses=problems(*TENANT_ERRORS),
)
async def set_model_key(
    access: WidgetsWrite,
    session: DbSession,
    box: AppSecretBox,
    id: uuid.UUID,
    body: schemas.ModelKeyUpdate,
) -> schemas.ModelKey:
    base_url = None if body.base_url is None else str(body.base_url)
    state = await service.set_model_key(session, box, access, id, body.api_key, base_url)
    return schemas.ModelKey.model_validate(state)


@router.delete(
    MODEL_KEY,
    summary="Remove a widget's model key",
    description="A published version whose agent has a `base_url` stops answering until a "
    "key is set again. Removing it when there is none is not an error.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS),
)
async def remove_model_key(access: WidgetsWrite, session: DbSession, id: uuid.UUID) -> None:
    await service.remove_model_key(session, access, id)


@router.post(
    TOOL_SECRET,
    summary="Generate a new tool secret for a widget",
    description="The key with which Kithost signs the calls of the widget's `http` tools "
    "(HMAC-SHA256, see the `http` tool). Made with the widget's first `http` tool and shown "
    "in that answer only; this shows a new one, only in this response, and the old one stops "
    "signing at once.",
    responses=problems(*TENANT_ERRORS),
)
async def rotate_tool_secret(
    access: WidgetsWrite, session: DbSession, box: AppSecretBox, id: uuid.UUID
) -> schemas.ToolSecret:
    new = await service.rotate_tool_secret(session, box, access, id)
    return schemas.ToolSecret.model_validate(new)
