from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base, TenantOwned, str_enum


class ExportStatus(StrEnum):
    pending = "pending"
    ready = "ready"
    failed = "failed"
    invalidated = "invalidated"
    """A conversation it holds was deleted: its file is deleted, it cannot be downloaded."""


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


class ConversationExportThread(Base):
    """A conversation an export's file holds, recorded before the file is published. No
    foreign key to the thread: the row outlives the thread's deletion, and so tells that the
    export holds a deleted conversation (``conversations.exports.invalidate``)."""

    __tablename__ = "conversation_export_threads"
    __table_args__ = (Index("ix_conversation_export_threads_thread", "tenant_id", "thread_id"),)

    export_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversation_exports.id", ondelete="CASCADE"), primary_key=True
    )
    thread_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
