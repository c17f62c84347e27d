from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import TenantOwned


class WidgetMode(StrEnum):
    self_hosted = "self_hosted"
    hosted = "hosted"


class Placement(StrEnum):
    framed = "framed"
    direct = "direct"


class Widget(TenantOwned):
    """A chat a tenant embeds: the editable draft and which version visitors see.

    ``revision`` counts every change to the widget (draft, origins, secrets, publishing):
    it is the ETag of the widget resource and what config caches revalidate against.
    """

    __tablename__ = "widgets"

    name: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    draft: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """A ``widgets.config.WidgetConfig`` as JSON."""
    published_version: Mapped[int | None]
    allow_insecure_origins: Mapped[bool] = mapped_column(default=False)
    identity_secret: Mapped[str | None] = mapped_column(Text)
    """Encrypted (``kit.crypto.SecretBox``): signs the identity tokens of tenant backends."""
    model_key: Mapped[str | None] = mapped_column(Text)
    """Encrypted: the tenant's API key for one endpoint, sealed with that endpoint
    (``secrets.service.set_model_key``)."""
    model_key_base_url: Mapped[str | None] = mapped_column(Text)
    """The endpoint (an agent's ``base_url``) the model key was set for; None with a key:
    the operator's. In clear, for the checks that save a config, which have no secret box."""
    tool_secret: Mapped[str | None] = mapped_column(Text)
    """Encrypted: signs the calls of the agent's ``http`` tools (made with the first one)."""
    revision: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": revision}
