from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base, TenantOwned, str_enum


class ErrorStatus(StrEnum):
    open = "open"
    resolved = "resolved"


class ErrorGroup(TenantOwned):
    """Client errors of one widget with the same fingerprint (kind, normalised message, top
    frame); a new occurrence reopens a resolved group."""

    __tablename__ = "error_groups"
    __table_args__ = (UniqueConstraint("tenant_id", "widget_id", "fingerprint"),)

    widget_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(1000))
    """The normalised message (numbers, ids and quoted values replaced)."""
    frame: Mapped[str | None] = mapped_column(String(500))
    hint: Mapped[str | None] = mapped_column(String(500))
    sample: Mapped[dict[str, Any]]
    """The data of the latest occurrence."""
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    count: Mapped[int] = mapped_column(default=0)
    status: Mapped[ErrorStatus] = mapped_column(str_enum(ErrorStatus), default=ErrorStatus.open)
    resolved_at: Mapped[datetime | None]


class ErrorGroupUser(Base):
    """An end user who met an error group (what ``affected end users`` counts), known only
    by a hash of their id (:func:`kithost.analytics.errors.repository.end_user_hash`):
    counting needs no more, and an anonymous end user's id is a credential (it mints their
    sessions). Purged once they have not met the group within the retention."""

    __tablename__ = "error_group_users"
    __table_args__ = (
        Index("ix_error_group_users_end_user", "tenant_id", "end_user_hash"),
        Index("ix_error_group_users_age", "tenant_id", "last_seen"),
    )

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("error_groups.id", ondelete="CASCADE"), primary_key=True
    )
    end_user_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    last_seen: Mapped[datetime]
    """Their latest occurrence of the group."""
