"""What an app holds for its lifetime: one typed :class:`AppState`, built by ``create_app``
(so an app under test has it without running its lifespan) and closed by its lifespan, and
the FastAPI dependencies that read it."""

from __future__ import annotations

from typing import Annotated

from authlib.integrations.starlette_client import (  # type: ignore[import-untyped]
    StarletteOAuth2App,
)
from celery import Celery
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import State

from kithost.db import Sessionmaker
from kithost.kit.crypto import SecretBox
from kithost.kit.ratelimit import RateLimiter
from kithost.settings import Settings


class AppState(State):
    """``app.state`` of a Kithost app (Starlette's ``State``, so code that keeps a cache of
    its own there still can)."""

    settings: Settings
    engine: AsyncEngine
    celery: Celery
    sessionmaker: Sessionmaker
    """Sessions on ``engine`` that send their tasks to ``celery`` and share one key ring."""
    secret_box: SecretBox
    rate_limiter: RateLimiter
    """On Redis when ``KITHOST_REDIS_URL`` is set, in-process otherwise (``kit.ratelimit``)."""
    oidc: StarletteOAuth2App | None
    """The identity provider's client; None when single sign-on is not configured."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: AsyncEngine,
        celery: Celery,
        sessionmaker: Sessionmaker,
        rate_limiter: RateLimiter,
        oidc: StarletteOAuth2App | None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.engine = engine
        self.celery = celery
        self.sessionmaker = sessionmaker
        self.secret_box = SecretBox(settings.keys())
        self.rate_limiter = rate_limiter
        self.oidc = oidc

    async def aclose(self) -> None:
        await self.rate_limiter.aclose()
        await self.engine.dispose()


def app_state(request: Request) -> AppState:
    state = request.app.state
    if not isinstance(state, AppState):
        raise TypeError("not an app made by kithost.app.create_app")
    return state


async def _settings(request: Request) -> Settings:
    return app_state(request).settings


async def _secret_box(request: Request) -> SecretBox:
    return app_state(request).secret_box


async def _rate_limiter(request: Request) -> RateLimiter:
    return app_state(request).rate_limiter


AppSettings = Annotated[Settings, Depends(_settings)]
AppSecretBox = Annotated[SecretBox, Depends(_secret_box)]
AppRateLimiter = Annotated[RateLimiter, Depends(_rate_limiter)]
