from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.dependencies import ConversationsRead, MembersWrite
from kithost.auth.principals import TenantAccess
from kithost.conversations import schemas, service
from kithost.db import DbSession, session_scope
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.settings import Settings
from kithost.state import AppSettings

router = APIRouter(prefix="/tenants/{tenant}/conversations", tags=["conversations"])

Filters = Annotated[schemas.ConversationQuery, Query()]


@router.get(
    "",
    summary="List conversations",
    description="The self-hosted chats' threads, last active first, filtered; `q` searches "
    "the messages' words. Anonymous visitors appear as `a:h_…` (a keyed hash).",
    responses=problems(*TENANT_ERRORS),
)
async def list_conversations(
    access: ConversationsRead, session: DbSession, settings: AppSettings, query: Filters
) -> schemas.ConversationPage:
    return await service.list_conversations(session, access, query, settings.encryption_keys()[0])


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
    service.record_export(session, access, query, "jsonl")
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
    service.record_export(session, access, query, "csv")
    return _streamed(
        request, service.export_csv, access, query, settings, "text/csv; charset=utf-8", "csv"
    )


Exporter = Callable[
    [AsyncSession, TenantAccess, schemas.ConversationQuery, str], AsyncIterator[str]
]


def _streamed(
    request: Request,
    export: Exporter,
    access: TenantAccess,
    query: schemas.ConversationQuery,
    settings: Settings,
    media_type: str,
    extension: str,
) -> StreamingResponse:
    """The export read in a session of its own (the request's has committed, with the
    audit entry, before the first byte)."""
    key = settings.encryption_keys()[0]

    async def chunks() -> AsyncIterator[str]:
        async with session_scope(request.app.state.sessionmaker, tenant=access.tenant.id) as reader:
            async for chunk in export(reader, access, query, key):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="conversations.{extension}"'},
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
    description="Its items in order, as the visitor saw them. Every read is audited.",
    responses=problems(*TENANT_ERRORS, 404),
)
async def read_conversation(
    access: ConversationsRead, session: DbSession, settings: AppSettings, thread_id: str
) -> schemas.Transcript:
    return await service.read_transcript(session, access, thread_id, settings.encryption_keys()[0])


@router.patch(
    "/{thread_id}/review",
    summary="Note on a conversation, or mark it reviewed",
    description="Staff only: never shown to the visitor. Audited.",
    responses=problems(*TENANT_ERRORS, 404),
)
async def review_conversation(
    access: ConversationsRead, session: DbSession, thread_id: str, body: schemas.ReviewUpdate
) -> schemas.Review:
    return await service.set_review(session, access, thread_id, body)


@router.delete(
    "/{thread_id}",
    summary="Delete a conversation",
    description="Its items and attachments go too. Audited.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*TENANT_ERRORS, 404),
)
async def delete_conversation(
    access: ConversationsRead, session: DbSession, thread_id: str
) -> None:
    await service.delete_conversation(session, access, thread_id)
