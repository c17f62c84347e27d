from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import Record


class SigningKey(Record):
    """A key that signs Kithost's JWTs. The newest unretired key signs; every key is
    published in the JWKS until ``retired_at`` plus the longest token lifetime has passed."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), unique=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_key: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]]
    retired_at: Mapped[datetime | None]
