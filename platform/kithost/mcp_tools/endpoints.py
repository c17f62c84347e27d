from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from kithost.auth.dependencies import WidgetsRead, WidgetsWrite
from kithost.db import DbSession
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.mcp_tools import schemas, service
from kithost.mcp_tools.client import McpConnector
from kithost.state import AppSecretBox, AppSettings, app_state

router = APIRouter(prefix="/tenants/{tenant}/widgets/{id}", tags=["widgets"])
SECRETS = "/mcp-secrets"
ToolId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


@router.get(
    SECRETS,
    summary="List which of a widget's mcp tools have a secret",
    description="Only that one is set and for which server: secrets are never shown again.",
    responses=problems(*TENANT_ERRORS),
)
async def list_mcp_secrets(
    access: WidgetsRead, session: DbSession, id: uuid.UUID
) -> list[schemas.McpSecret]:
    states = await service.secret_states(session, access, id)
    return [schemas.McpSecret.model_validate(s, from_attributes=True) for s in states]


@router.put(
    SECRETS + "/{tool_id}",
    summary="Set the secret of a widget's mcp tool",
    description="The value of the tool's `secret_header` (e.g. `Authorization: Bearer …`) "
    "on every request to its MCP server. The tool must be in the draft (409 "
    "`mcp_tool_not_in_draft`); the secret is bound to the origin of its URL there and sent "
    "nowhere else: after changing the URL's origin, set it again. Stored encrypted, never "
    "shown again.",
    responses=problems(*TENANT_ERRORS, 409),
)
async def set_mcp_secret(
    access: WidgetsWrite,
    session: DbSession,
    box: AppSecretBox,
    id: uuid.UUID,
    tool_id: ToolId,
    body: schemas.McpSecretUpdate,
) -> schemas.McpSecret:
    state = await service.set_secret(session, box, access, id, tool_id, body.value)
    return schemas.McpSecret.model_validate(state, from_attributes=True)


@router.delete(
    SECRETS + "/{tool_id}",
    summary="Remove the secret of a widget's mcp tool",
    description="Removing it when there is none is not an error.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS),
)
async def remove_mcp_secret(
    access: WidgetsWrite, session: DbSession, id: uuid.UUID, tool_id: ToolId
) -> None:
    await service.remove_secret(session, access, id, tool_id)


@router.post(
    "/tools/{tool_id}/discover",
    summary="List the tools of an mcp tool's server",
    description="Connects to the MCP server of the draft's `mcp` tool `tool_id` (with its "
    "secret, within the deployment's outbound rules) and answers with its tools, each "
    "marked `allowed` when `allowed_tools` names it, and the allowed names it lacks "
    "(`missing_tools`). 409 `mcp_tool_not_in_draft` or `mcp_secret_stale` (the URL's origin "
    "changed since the secret was set); 422 `outbound_refused` (field: the tool's `url`); "
    "502 `mcp_unavailable` or `mcp_timeout` when the server cannot be used.",
    responses=problems(*TENANT_ERRORS, 409, 502),
)
async def discover_mcp_tools(
    access: WidgetsWrite,
    session: DbSession,
    box: AppSecretBox,
    settings: AppSettings,
    request: Request,
    id: uuid.UUID,
    tool_id: ToolId,
) -> schemas.Discovery:
    connector = McpConnector(settings.outbound_policy, app_state(request).outbound_resolver)
    found = await service.discover(session, box, connector, access, id, tool_id)
    return schemas.Discovery.model_validate(found, from_attributes=True)
