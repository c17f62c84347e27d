from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import TenantOwned


class ApiClient(TenantOwned):
    """An OAuth 2.0 client of one tenant's backend; the secret is kept only as a hash."""

    __tablename__ = "api_clients"

    name: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
