"""Conversations as the chat runtime stores them, made directly (no model involved)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import ChatItem, ChatThread, Widget
from kithost.models.base import utcnow

ANONYMOUS = "a:anon_" + "z" * 24


async def conversation(
    db: AsyncSession,
    widget: Widget,
    end_user: str,
    texts: list[str],
    *,
    hours_ago: int = 0,
    feedback: str | None = None,
    preview: bool = False,
) -> str:
    """A thread of ``end_user`` alternating user and assistant messages of ``texts``
    (``preview``: started in the dashboard's preview of the widget's draft)."""
    thread_id = "thr_" + secrets.token_hex(8)
    at = utcnow() - timedelta(hours=hours_ago)
    db.add(
        ChatThread(
            id=thread_id,
            tenant_id=widget.tenant_id,
            widget_id=widget.id,
            end_user_id=end_user,
            created_at=at,
            updated_at=at,
            payload={"id": thread_id, "title": texts[0][:20], "created_at": at.isoformat()},
            payload_version=1,
            preview=preview,
        )
    )
    await db.flush()
    for index, text in enumerate(texts):
        kind = "user_message" if index % 2 == 0 else "assistant_message"
        part = "input_text" if kind == "user_message" else "output_text"
        db.add(
            ChatItem(
                id="msg_" + secrets.token_hex(8),
                thread_id=thread_id,
                tenant_id=widget.tenant_id,
                widget_id=widget.id,
                end_user_id=end_user,
                created_at=at + timedelta(seconds=index),
                kind=kind,
                feedback=feedback if kind == "assistant_message" else None,
                payload={"type": kind, "content": [{"type": part, "text": text}]},
                payload_version=1,
            )
        )
    await db.flush()
    return thread_id
