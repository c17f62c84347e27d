from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base, utcnow


class ChatAttachment(Base):
    """A file an end user attaches to a message: metadata here, bytes in ``storage``.

    Created by ``attachments.create`` (``uploaded_at`` unset), uploaded once with the signed
    URL it returns, then bound to a thread when a message carries it.
    """

    __tablename__ = "chat_attachments"
    __table_args__ = (
        Index("ix_chat_attachments_owner", "tenant_id", "end_user_id", "widget_id", "created_at"),
        Index("ix_chat_attachments_age", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    widget_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("widgets.id", ondelete="CASCADE"))
    end_user_id: Mapped[str] = mapped_column(String(210))
    thread_id: Mapped[str | None] = mapped_column(
        ForeignKey("chat_threads.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    mime_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    """Declared by ``attachments.create``; the upload may not exceed it."""
    uploaded_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]]
    payload_version: Mapped[int]
