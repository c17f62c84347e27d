from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from kithost.auth.dependencies import ConversationsRead, ConversationsWrite, MembersWrite
from kithost.auth.principals import TenantAccess
from kithost.chat.runtime import runtime
from kithost.conversations import exports, schemas, service
from kithost.db import DbSession
from kithost.errors import Gone
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.state import AppSettings
from kithost.storage import opened

router = APIRouter(prefix="/tenants/{tenant}/conversations", tags=["conversations"])

Page = Annotated[schemas.ConversationQuery, Query()]
Filters = Annotated[schemas.ConversationFilters, Query()]


@router.get(
    "",
    summary="List conversations",
    description="The self-hosted chats' threads, last active first, filtered; `q` searches "
    "the messages' words. Anonymous visitors appear as `a:h_…` (a keyed hash).",
    responses=problems(*TENANT_ERRORS),
)
async def list_conversations(
    access: ConversationsRead, session: DbSession, settings: AppSettings, query: Page
) -> schemas.ConversationPage:
    return await service.list_conversations(session, access, query, settings.keys())


@router.get(
    "/export.jsonl",
    summary="Export conversations (JSON lines, streamed)",
    description="Every conversation the filters match, one per line, with its items. Audited.",
    responses={200: {"content": {"application/x-ndjson": {}}}, **problems(*TENANT_ERRORS)},
    response_class=StreamingResponse,
)
async def export_conversations(
    request: Request,
    access: ConversationsRead,
    session: DbSession,
    settings: AppSettings,
    query: Filters,
) -> StreamingResponse:
    await service.record_export(session, access, query, "jsonl", settings.keys())
    return _streamed(
        request, service.export_lines, access, query, settings, "application/x-ndjson", "jsonl"
    )


@router.get(
    "/export.csv",
    summary="Export messages (CSV, streamed)",
    description="Every item of the conversations the filters match, one row each: "
    "`thread_id, widget_id, end_user, item_id, created_at, kind, text` (a header first; "
    "text that a spreadsheet would take for a formula starts with `'`). Audited.",
    responses={200: {"content": {"text/csv": {}}}, **problems(*TENANT_ERRORS)},
    response_class=StreamingResponse,
)
async def export_messages(
    request: Request,
    access: ConversationsRead,
    session: DbSession,
    settings: AppSettings,
    query: Filters,
) -> StreamingResponse:
    await service.record_export(session, access, query, "csv", settings.keys())
    return _streamed(
        request, service.export_csv, access, query, settings, "text/csv; charset=utf-8", "csv"
    )


def _streamed(
    request: Request,
    export: service.Exporter,
    access: TenantAccess,
    query: schemas.ConversationFilters,
    settings: Settings,
    media_type: str,
    extension: str,
) -> StreamingResponse:
    """The export read a page at a time, each in a unit of work of its own (the request's
    has committed, with the audit entry, before the first byte)."""
    keys, sessionmaker = settings.keys(), request.app.state.sessionmaker

    async def chunks() -> AsyncIterator[str]:
        async for part in export(sessionmaker, access.tenant.id, query, keys):
            yield part.text

    return StreamingResponse(
        chunks(),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="conversations.{extension}"'},
    )


@router.post(
    "/exports",
    summary="Export conversations in the background",
    description="For exports too large to stream: a worker writes the file; poll "
    "`GET …/exports/{id}` for its download link. Same filters as the list. Audited. "
    "409 `too_many_exports` while the tenant has 3 being written.",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(*TENANT_ERRORS, 409),
)
async def create_export(
    request: Request,
    access: ConversationsRead,
    session: DbSession,
    settings: AppSettings,
    body: schemas.ExportCreate,
) -> schemas.Export:
    export = await exports.create(session, access, body, settings.keys())
    return exports.shown(settings, export, access.actor, _downloads(request), utcnow())


@router.get(
    "/exports/{export_id}",
    summary="An export's status and download link",
    description="Once `ready`, `download_url` is a link valid for 10 minutes, needing no "
    "credentials; each download is audited as the caller who got the link. `invalidated` "
    "once a conversation the export holds is deleted: ask for a new one.",
    responses=problems(*TENANT_ERRORS, 404),
)
async def get_export(
    request: Request,
    access: ConversationsRead,
    session: DbSession,
    settings: AppSettings,
    export_id: uuid.UUID,
) -> schemas.Export:
    export = await exports.get(session, access, export_id)
    return exports.shown(settings, export, access.actor, _downloads(request), utcnow())


def _downloads(request: Request) -> Callable[[str], str]:
    """Where a download link with a token points."""
    return lambda token: str(request.url_for("download_export", token=token))


downloads = APIRouter(prefix="/conversation-exports", tags=["conversations"])


@downloads.get(
    "/{token}",
    summary="Download an export",
    description="The link `GET …/conversations/exports/{id}` gave: 404 `download_not_found` "
    "for a link Kithost did not sign, 410 `download_link_expired` once its time is over, 410 "
    "`export_invalidated` once a conversation the export holds is deleted, 410 `export_lost` "
    "when its file is gone from the storage (ask for a new export). Audited.",
    responses={
        200: {"content": {"application/x-ndjson": {}, "text/csv": {}}},
        **problems(404, 410),
    },
    response_class=StreamingResponse,
)
async def download_export(
    request: Request, session: DbSession, settings: AppSettings, token: str
) -> StreamingResponse:
    link = exports.read_link(settings, token, utcnow())
    export = await exports.download(session, link)
    storage = runtime(request.app.state).storage
    try:
        pieces = await opened(storage, exports.blob_key(export))
    except FileNotFoundError as lost:  # the download did not happen: nothing is audited
        raise Gone(
            "This export's file is lost: ask for a new export.", code="export_lost"
        ) from lost
    name = f"conversations-{export.id}.{export.format}"
    return StreamingResponse(
        pieces,
        media_type=exports.MEDIA_TYPES[schemas.ExportFormat(export.format)],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/settings",
    summary="Who may read conversations",
    description="Owners and admins always; editors when `editors_may_read`; viewers never.",
    responses=problems(*TENANT_ERRORS),
)
async def get_settings(access: ConversationsRead) -> schemas.ConversationSettings:
    return service.settings_of(access)


@router.put(
    "/settings",
    summary="Let editors read conversations, or not",
    description="Needs `members:write`; opening them to editors needs `conversations:read` "
    "too (403 `scope_escalation` without it). Audited.",
    responses=problems(*TENANT_ERRORS),
)
async def put_settings(
    access: MembersWrite, session: DbSession, body: schemas.ConversationSettings
) -> schemas.ConversationSettings:
    return service.change_settings(session, access, body)


@router.get(
    "/{thread_id}",
    summary="Read a conversation",
    description="Its items in order, as the visitor saw them, `limit` at a time (1,000 by "
    "default): `next` is the cursor of the next ones, to pass as `after`. Every read is "
    "audited.",
    responses=problems(*TENANT_ERRORS, 404),
)
async def read_conversation(
    access: ConversationsRead,
    session: DbSession,
    settings: AppSettings,
    thread_id: str,
    after: Annotated[
        str | None, Query(max_length=160, description="The `next` of the previous read.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.TRANSCRIPT_PAGE)] = service.TRANSCRIPT_PAGE,
) -> schemas.TranscriptPage:
    return await service.read_transcript(
        session, access, thread_id, settings.keys(), after=after, limit=limit
    )


@router.patch(
    "/{thread_id}/review",
    summary="Note on a conversation, or mark it reviewed",
    description="Staff only: never shown to the visitor. Needs `conversations:write`. Audited.",
    responses=problems(*TENANT_ERRORS, 404),
)
async def review_conversation(
    access: ConversationsWrite, session: DbSession, thread_id: str, body: schemas.ReviewUpdate
) -> schemas.Review:
    return await service.set_review(session, access, thread_id, body)


@router.delete(
    "/{thread_id}",
    summary="Delete a conversation",
    description="Its items and attachments go too, and the exports holding it (their "
    "downloads answer 410 `export_invalidated`). Needs `conversations:write`. Audited.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS, 404),
)
async def delete_conversation(
    access: ConversationsWrite, session: DbSession, thread_id: str
) -> None:
    await service.delete_conversation(session, access, thread_id)
