from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import TenantOwned


class WidgetVersion(TenantOwned):
    """An immutable, numbered snapshot of a widget's configuration."""

    __tablename__ = "widget_versions"
    __table_args__ = (UniqueConstraint("widget_id", "number"),)

    widget_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("widgets.id", ondelete="CASCADE"))
    number: Mapped[int]
    config: Mapped[dict[str, Any]]
    published_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    note: Mapped[str] = mapped_column(default="", server_default="")
    """What the publisher said this version changes."""
