from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Record


class Tenant(Record):
    """A customer of the platform: a company, or an agency's client."""

    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    openai_api_key: Mapped[str | None] = mapped_column(Text)
    """Encrypted (``kit.crypto.SecretBox``); write-only through the API."""
    openai_api_key_last4: Mapped[str | None] = mapped_column(String(4))
    editors_read_conversations: Mapped[bool] = mapped_column(default=False)
    """Editors hold ``conversations:read`` too (owners and admins always; viewers never)."""
