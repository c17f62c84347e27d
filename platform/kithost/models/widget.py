from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import TenantOwned, str_enum


class WidgetMode(StrEnum):
    self_hosted = "self_hosted"
    hosted = "hosted"


class Placement(StrEnum):
    framed = "framed"
    direct = "direct"


class Widget(TenantOwned):
    """A chat a tenant embeds: the editable draft and which version visitors see."""

    __tablename__ = "widgets"

    name: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    mode: Mapped[WidgetMode] = mapped_column(str_enum(WidgetMode), default=WidgetMode.self_hosted)
    placement: Mapped[Placement] = mapped_column(str_enum(Placement), default=Placement.framed)
    draft: Mapped[dict[str, Any]] = mapped_column(default=dict)
    published_version: Mapped[int | None]
