from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import TenantOwned


class WidgetMcpSecret(TenantOwned):
    """The secret a widget's ``mcp`` tool sends its server (a header's value), set apart from
    the versioned config: write-only, and sent only to the origin it was set for."""

    __tablename__ = "widget_mcp_secrets"
    __table_args__ = (UniqueConstraint("widget_id", "tool_id"),)

    widget_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("widgets.id", ondelete="CASCADE"))
    tool_id: Mapped[str] = mapped_column(String(64))
    secret: Mapped[str | None] = mapped_column(Text)
    """Encrypted (``kit.crypto.SecretBox``); never None once set (nullable only for
    ``secrets.service.ENCRYPTED_COLUMNS``' type)."""
    origin: Mapped[str] = mapped_column(String(300))
    """The server's ``scheme://host:port`` when the secret was set: it goes nowhere else."""
