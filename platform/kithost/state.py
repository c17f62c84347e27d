"""Typed access to what ``create_app`` keeps on ``app.state``, as FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kithost.kit.crypto import SecretBox
from kithost.settings import Settings


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _secret_box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


AppSettings = Annotated[Settings, Depends(_settings)]
AppSecretBox = Annotated[SecretBox, Depends(_secret_box)]
