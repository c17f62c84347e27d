from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base, utcnow


class ChatQuotaUse(Base):
    """One message an end user sent a widget, as ``agent.messages_per_user_per_day`` counts
    them (``kithost.chat``): every request that makes the agent answer — a user message, a
    retry, a widget action the agent answers, a client tool's output. Kept apart from the
    threads, so that neither a retry (which deletes the answers it replaces) nor deleting a
    thread gives the end user their messages back; written only while the widget has a
    quota, and only for what it answered.

    ``id`` is the user message's item id, or a random id (``qu_…``) for the others; ``kind``
    one of ``message``, ``retry``, ``action``, ``tool_output``. Rows older than the quota's
    window count for nothing: the end user's are deleted as they send more, the tenant's
    with retention's purge, an end user's with their data.
    """

    __tablename__ = "chat_quota_uses"
    __table_args__ = (
        Index("ix_chat_quota_uses_owner", "tenant_id", "widget_id", "end_user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    widget_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("widgets.id", ondelete="CASCADE"), index=True
    )
    end_user_id: Mapped[str] = mapped_column(String(210))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
