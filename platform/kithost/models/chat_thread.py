from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base, utcnow


class ChatThread(Base):
    """A ChatKit thread of one end user of one widget (self-hosted runtime, ``kithost.chat``).

    ``payload`` is the SDK's ``ThreadMetadata`` as JSON, ``payload_version`` the layout it was
    written in (``chat.store.PAYLOAD_VERSION``): rows outlive SDK upgrades.
    ``updated_at`` moves with every item added: retention purges threads idle since a cutoff.
    ``preview``: started in the dashboard's preview of a draft (``widgets.preview``): the
    tenant's own test, not a conversation (the chat answers it; conversations do not list,
    search or export it, and no webhook announces it).
    """

    __tablename__ = "chat_threads"
    __table_args__ = (
        Index("ix_chat_threads_owner", "tenant_id", "end_user_id", "widget_id", "created_at", "id"),
        Index("ix_chat_threads_idle", "tenant_id", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    widget_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("widgets.id", ondelete="CASCADE"), index=True
    )
    end_user_id: Mapped[str] = mapped_column(String(210))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[dict[str, Any]]
    payload_version: Mapped[int]
    preview: Mapped[bool] = mapped_column(default=False)
