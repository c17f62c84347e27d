from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Response, status

from kithost.auth.dependencies import WidgetsRead, WidgetsWrite
from kithost.auth.principals import TenantAccess
from kithost.db import DbSession
from kithost.kit.crypto import SecretBox
from kithost.kit.origins import origin_of
from kithost.kit.schemas import TENANT_ERRORS, SearchText, problems
from kithost.models import Widget
from kithost.models.base import utcnow
from kithost.state import AppSecretBox, AppSettings
from kithost.widgets import preview, schemas, service
from kithost.widgets.tool_secret import ensure_tool_secret

router = APIRouter(prefix="/tenants/{tenant}/widgets", tags=["widgets"])

IfMatch = Annotated[
    str | None,
    Header(description='The widget\'s ETag (`"<revision>"`), from GET or your last change.'),
]
CONDITIONAL = problems(*TENANT_ERRORS, 412, 428)
"""The answers of a change that needs ``If-Match``: 428 without it, 412 when stale."""
ORIGIN_CHANGE = problems(*TENANT_ERRORS, 412)
"""412: the widget changed while the request ran (origin changes make a new revision)."""
Limit = Annotated[int, Query(ge=1, le=200)]
MAX_VERSION = 2**31 - 1
"""The largest number ``widget_versions.number`` holds."""
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION)]


def _widget(response: Response, widget: Widget) -> schemas.Widget:
    response.headers["ETag"] = service.etag(widget)
    return schemas.Widget.model_validate(widget)


async def _saved(
    response: Response, session: DbSession, box: SecretBox, access: TenantAccess, widget: Widget
) -> schemas.Widget:
    """A widget whose draft changed: with its new tool secret if its first ``http`` tool
    made one (shown this once)."""
    secret = await ensure_tool_secret(session, box, access, widget)
    return _widget(response, widget).model_copy(update={"new_tool_secret": secret})


@router.post(
    "",
    summary="Create a widget",
    description="Answers with the widget and its `ETag`. Origins are normalised like "
    "`POST …/origins`.",
    status_code=status.HTTP_201_CREATED,
    responses=problems(*TENANT_ERRORS),
)
async def create_widget(
    access: WidgetsWrite,
    session: DbSession,
    settings: AppSettings,
    box: AppSecretBox,
    response: Response,
    body: schemas.WidgetCreate,
) -> schemas.Widget:
    widget = await service.create_widget(
        session,
        access.actor,
        access.tenant,
        name=body.name,
        config=body.config,
        origins=body.origins,
        allow_insecure_origins=body.allow_insecure_origins,
        outbound=settings.outbound_policy,
    )
    return await _saved(response, session, box, access, widget)


@router.get(
    "",
    summary="List the widgets",
    description="In creation order, `limit` at a time: for the next page, pass the last "
    "widget's id as `after`. `q`: only the widgets whose name holds that text, in any case.",
    responses=problems(*TENANT_ERRORS),
)
async def list_widgets(
    access: WidgetsRead,
    session: DbSession,
    limit: Limit = 50,
    after: Annotated[
        uuid.UUID | None, Query(description="List the widgets after this one.")
    ] = None,
    q: Annotated[SearchText | None, Query(description="Text the name holds.")] = None,
) -> list[schemas.Widget]:
    widgets = await service.list_widgets(session, access.tenant, after=after, limit=limit, q=q)
    return [schemas.Widget.model_validate(w) for w in widgets]


@router.get(
    "/{id}",
    summary="Get a widget",
    description="With its `ETag`, which changes need in `If-Match`.",
    responses=problems(*TENANT_ERRORS),
)
async def get_widget(
    access: WidgetsRead, session: DbSession, response: Response, id: uuid.UUID
) -> schemas.Widget:
    return _widget(response, await service.get_widget(session, access.tenant, id))


@router.patch(
    "/{id}",
    summary="Change a widget",
    description="Changes the fields given; `config` is a JSON merge patch of the draft. "
    "Visitors keep the published version until the next publish.",
    responses=problems(*TENANT_ERRORS, 409, 412, 428),
)
async def update_widget(
    access: WidgetsWrite,
    session: DbSession,
    settings: AppSettings,
    box: AppSecretBox,
    response: Response,
    id: uuid.UUID,
    body: schemas.WidgetUpdate,
    if_match: IfMatch = None,
) -> schemas.Widget:
    widget = await service.edit_widget(
        session,
        access,
        id,
        if_match,
        name=body.name,
        config_patch=body.config,
        allow_insecure_origins=body.allow_insecure_origins,
        outbound=settings.outbound_policy,
    )
    return await _saved(response, session, box, access, widget)


@router.delete(
    "/{id}",
    summary="Delete a widget",
    description="With its versions, origins and conversations (their attachments' files "
    "too); visitors can no longer load it.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS),
)
async def delete_widget(access: WidgetsWrite, session: DbSession, id: uuid.UUID) -> None:
    await service.delete_widget(session, access, id)


@router.put(
    "/{id}/config",
    summary="Replace a widget's draft configuration",
    description="Options left out take their defaults.",
    responses=CONDITIONAL,
)
async def replace_config(
    access: WidgetsWrite,
    session: DbSession,
    settings: AppSettings,
    box: AppSecretBox,
    response: Response,
    id: uuid.UUID,
    body: Annotated[schemas.RawConfig, Body()],
    if_match: IfMatch = None,
) -> schemas.Widget:
    widget = await service.replace_config(
        session, access, id, if_match, body, outbound=settings.outbound_policy
    )
    return await _saved(response, session, box, access, widget)


@router.post(
    "/{id}/convert",
    summary="Convert a hosted widget to a self-hosted one",
    description="OpenAI shut Agent Builder down on 2026-11-30. The draft becomes self-hosted: "
    "ChatKit options, launcher, origins, actions and identity settings kept, hosted-only "
    "settings mapped where ChatKit's self-hosted options have an equivalent; the answer lists "
    "what did not carry over. Visitors see nothing of it until you publish.",
    responses={**CONDITIONAL, **problems(409)},
)
async def convert(
    access: WidgetsWrite,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    id: uuid.UUID,
    if_match: IfMatch = None,
) -> schemas.Converted:
    widget, conversion = await service.convert_hosted(
        session, access, id, if_match, settings=settings
    )
    return schemas.Converted(
        widget=_widget(response, widget),
        carried=conversion.carried,
        not_carried=[schemas.NotCarried(**vars(n)) for n in conversion.not_carried],
    )


@router.post(
    "/{id}/agent-import",
    summary="Import an Agent Builder export as the widget's agent",
    description="The Python code Agent Builder exports (Agents SDK) is read, never run: the "
    "agent that answers first becomes the draft's `agent` (name, instructions, model, "
    "temperature, max tokens; file search, with each vector store the tenant's own key reaches "
    "and no other tenant's knowledge base holds as a knowledge base, adopted only by a caller "
    "holding `knowledge:write`; web search; the agents "
    "it hands off to as `handoffs`; the guardrails Kithost has: "
    "moderation, keywords as refused topics), and everything else is listed with its line "
    "and what to do instead. The export replaces the widget's file search, web search and "
    "`mcp` tools (a secret no draft or published tool uses any more is removed with its "
    "server); its `http` and `client` tools stay; `tools` says what became of each. "
    "`dry_run=true` changes nothing (and needs no `If-Match`). A hosted widget is 409 "
    "`widget_hosted`: convert it first.",
    responses={**CONDITIONAL, **problems(409, 422)},
)
async def import_agent(
    access: WidgetsWrite,
    session: DbSession,
    settings: AppSettings,
    box: AppSecretBox,
    response: Response,
    id: uuid.UUID,
    body: schemas.AgentImport,
    if_match: IfMatch = None,
    dry_run: Annotated[bool, Query(description="Show the result without saving it.")] = False,
) -> schemas.AgentImported:
    done = await service.import_agent(
        session, access, id, if_match, body.code, dry_run=dry_run, settings=settings, box=box
    )
    if not dry_run:
        _widget(response, done.widget)
    return schemas.AgentImported(
        dry_run=dry_run,
        config=done.draft,
        state_variables=done.imported.state_variables,
        not_carried=[schemas.Skipped(**vars(s)) for s in done.imported.skipped],
        tools=[schemas.ToolChange(**vars(change)) for change in done.tools],
    )


@router.post(
    "/{id}/preview",
    summary="Preview a widget's draft",
    description="A key that serves the current draft, instead of the published version, to "
    "the loader, the framed page and the chat, for 15 minutes and only on a page of "
    "Kithost's own origin (the dashboard's: `KITHOST_PUBLIC_URL`); `url` is such a page. "
    "Preview sessions, events and messages never count in analytics.",
    status_code=status.HTTP_201_CREATED,
    responses=problems(*TENANT_ERRORS),
)
async def create_preview(
    access: WidgetsWrite, session: DbSession, settings: AppSettings, id: uuid.UUID
) -> schemas.PreviewLink:
    widget = await service.get_widget(session, access.tenant, id)
    # The dashboard's origin as configured, never the request's Host: the caller would name
    # any site as the one page allowed to show the draft (and write it into frame-ancestors).
    origin = origin_of(settings.base_url)
    expires_at = utcnow() + preview.PREVIEW_TTL
    shown = preview.Preview(widget.tenant_id, widget.id, origin, expires_at, access.actor)
    key = preview.issue(settings, shown)
    return schemas.PreviewLink(
        public_key=key, url=preview.PAGE_PATH.format(key=key), expires_at=expires_at
    )


@router.post(
    "/{id}/publish",
    summary="Publish a widget's draft",
    description="Freezes the draft, checked again as saving it is, as the next numbered "
    "version, which visitors see from then on.",
    responses=CONDITIONAL,
)
async def publish(
    access: WidgetsWrite,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    id: uuid.UUID,
    body: schemas.Publish | None = None,
    if_match: IfMatch = None,
) -> schemas.Widget:
    note = body.note if body is not None else ""
    widget = await service.publish(
        session, access, id, if_match, note, outbound=settings.outbound_policy
    )
    return _widget(response, widget)


@router.get(
    "/{id}/versions",
    summary="List a widget's published versions",
    description="Newest first, `limit` at a time: for the next page, pass the last number "
    "as `before`.",
    responses=problems(*TENANT_ERRORS),
)
async def list_versions(
    access: WidgetsRead,
    session: DbSession,
    id: uuid.UUID,
    limit: Limit = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="List the versions below this one.")
    ] = None,
) -> list[schemas.VersionSummary]:
    versions = await service.list_versions(session, access.tenant, id, before=before, limit=limit)
    return [schemas.VersionSummary.model_validate(v) for v in versions]


@router.get(
    "/{id}/versions/{number}",
    summary="Get a published version",
    responses=problems(*TENANT_ERRORS),
)
async def get_version(
    access: WidgetsRead, session: DbSession, id: uuid.UUID, number: VersionNumber
) -> schemas.Version:
    version = await service.get_version(session, access.tenant, id, number)
    return schemas.Version.model_validate(version)


@router.post(
    "/{id}/versions/{number}/restore",
    summary="Restore a version into the draft",
    description="Copies the version's configuration into the draft; publish to show it.",
    responses=CONDITIONAL,
)
async def restore_version(
    access: WidgetsWrite,
    session: DbSession,
    settings: AppSettings,
    box: AppSecretBox,
    response: Response,
    id: uuid.UUID,
    number: VersionNumber,
    if_match: IfMatch = None,
) -> schemas.Widget:
    widget = await service.restore_version(
        session, access, id, number, if_match, outbound=settings.outbound_policy
    )
    return await _saved(response, session, box, access, widget)


@router.get(
    "/{id}/origins",
    summary="List the origins allowed to show a widget",
    responses=problems(*TENANT_ERRORS),
)
async def list_origins(
    access: WidgetsRead, session: DbSession, id: uuid.UUID
) -> list[schemas.Origin]:
    origins = await service.list_origins(session, access.tenant, id)
    return [schemas.Origin.model_validate(o) for o in origins]


@router.post(
    "/{id}/origins",
    summary="Allow an origin to show a widget",
    description="Exact (`https://shop.example.com`) or a wildcard of any depth "
    "(`https://*.example.com`). Plain `http://` only for localhost unless the widget "
    "allows insecure origins. Takes effect at once.",
    status_code=status.HTTP_201_CREATED,
    responses=problems(*TENANT_ERRORS, 409, 412),
)
async def add_origin(
    access: WidgetsWrite, session: DbSession, id: uuid.UUID, body: schemas.OriginCreate
) -> schemas.Origin:
    allowed = await service.add_origin(
        session, access, id, origin=body.origin, domain_key=body.domain_key
    )
    return schemas.Origin.model_validate(allowed)


@router.patch(
    "/{id}/origins/{origin_id}",
    summary="Set an origin's OpenAI domain key",
    responses=ORIGIN_CHANGE,
)
async def update_origin(
    access: WidgetsWrite,
    session: DbSession,
    id: uuid.UUID,
    origin_id: uuid.UUID,
    body: schemas.OriginUpdate,
) -> schemas.Origin:
    allowed = await service.update_origin(
        session, access, id, origin_id, domain_key=body.domain_key
    )
    return schemas.Origin.model_validate(allowed)


@router.delete(
    "/{id}/origins/{origin_id}",
    summary="Stop allowing an origin",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ORIGIN_CHANGE,
)
async def remove_origin(
    access: WidgetsWrite, session: DbSession, id: uuid.UUID, origin_id: uuid.UUID
) -> None:
    await service.remove_origin(session, access, id, origin_id)
