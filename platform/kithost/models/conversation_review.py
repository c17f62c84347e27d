from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base, utcnow


class ConversationReview(Base):
    """The tenant's staff's note on a conversation and whether someone reviewed it; never
    shown to the visitor. Goes with its thread."""

    __tablename__ = "conversation_reviews"

    thread_id: Mapped[str] = mapped_column(
        ForeignKey("chat_threads.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    note: Mapped[str] = mapped_column(Text, default="")
    reviewed: Mapped[bool] = mapped_column(default=False)
    updated_by: Mapped[str | None] = mapped_column(String(255))
    """Who changed it last (the actor's id)."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
