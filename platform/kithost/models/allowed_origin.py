from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import TenantOwned


class AllowedOrigin(TenantOwned):
    """A web origin (``scheme://host[:port]``) allowed to show a widget, with the OpenAI
    domain key registered for it (needed by the direct placement)."""

    __tablename__ = "allowed_origins"
    __table_args__ = (UniqueConstraint("widget_id", "origin"),)

    widget_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("widgets.id", ondelete="CASCADE"))
    origin: Mapped[str] = mapped_column(String(255))
    domain_key: Mapped[str | None] = mapped_column(String(255))
