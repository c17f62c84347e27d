from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from kithost.auth.dependencies import ConversationsRead
from kithost.conversations import schemas, service
from kithost.db import DbSession, session_scope
from kithost.kit.schemas import TENANT_ERRORS, problems
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
    description="Every conversation the filters match, one per line, with its items.",
    responses={200: {"content": {"application/x-ndjson": {}}}, **problems(*TENANT_ERRORS)},
    response_class=StreamingResponse,
)
async def export_conversations(
    request: Request, access: ConversationsRead, settings: AppSettings, query: Filters
) -> StreamingResponse:
    key = settings.encryption_keys()[0]

    async def lines() -> AsyncIterator[str]:
        async with session_scope(request.app.state.sessionmaker) as reader:
            async for line in service.export_lines(reader, access, query, key):
                yield line

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="conversations.jsonl"'},
    )


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
