from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import TenantOwned, str_enum


class ExportStatus(StrEnum):
    pending = "pending"
    ready = "ready"
    failed = "failed"


class ConversationExport(TenantOwned):
    """An export of the tenant's conversations written by a task to the blob storage
    (``conversations.exports``), downloaded through short-lived signed links."""

    __tablename__ = "conversation_exports"

    format: Mapped[str] = mapped_column(String(8))
    filters: Mapped[dict[str, Any]]
    status: Mapped[ExportStatus] = mapped_column(
        str_enum(ExportStatus), default=ExportStatus.pending
    )
    requested_by: Mapped[str | None] = mapped_column(String(255))
    """Who asked for it (the actor's id)."""
    size_bytes: Mapped[int | None]
    finished_at: Mapped[datetime | None]
