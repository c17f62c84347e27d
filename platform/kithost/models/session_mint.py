from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Base, str_enum, utcnow
from kithost.models.widget import WidgetMode


class SessionMint(Base):
    """One hosted client secret handed out, so that a refresh presenting it finds its end
    user: kept as a SHA-256 hash, never the secret. (Analytics counts every mint from
    ``server.session.minted`` facts.)"""

    __tablename__ = "session_mints"
    __table_args__ = (Index(None, "tenant_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    widget_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("widgets.id", ondelete="CASCADE"), index=True
    )
    end_user_id: Mapped[str] = mapped_column(String(210))
    origin: Mapped[str | None] = mapped_column(String(255))
    mode: Mapped[WidgetMode] = mapped_column(str_enum(WidgetMode))
    secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
