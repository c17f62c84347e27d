from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base, utcnow

SEARCH_TABLE = "chat_items_fts"
"""SQLite only: the FTS5 index of the messages' text (``conversations.repository``), made
and kept in step with ``chat_items`` by triggers of its migration; outside the models (and
so ignored, with FTS5's own tables, by Alembic's comparison)."""
SEARCH_INDEX = "ix_chat_items_search"
"""PostgreSQL only: the GIN index of the messages' words as ``tsvector`` (the SQL function
``message_words(payload)``, migration ``7e3b5c1d9a42``), outside the models as well. The
search reads it through the view ``chat_item_words`` (migration ``bf5a3a2ac457``), as
row-level security requires."""


class ChatItem(Base):
    """One item of a ChatKit thread (a message, a widget, hidden context…).

    Ordered by ``(created_at, id)``, the time the SDK made it; ``kind`` is the item's
    ``type`` (messages are counted in the conversation list); ``feedback`` the end user's
    thumbs.
    """

    __tablename__ = "chat_items"
    __table_args__ = (Index("ix_chat_items_order", "thread_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("chat_threads.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    widget_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("widgets.id", ondelete="CASCADE"))
    end_user_id: Mapped[str] = mapped_column(String(210))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    feedback: Mapped[str | None] = mapped_column(String(8))
    payload: Mapped[dict[str, Any]]
    payload_version: Mapped[int]
