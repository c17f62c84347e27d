"""What an app holds for its lifetime: one typed :class:`AppState`, built by ``create_app``
(so an app under test has it without running its lifespan) and closed by its lifespan, and
the FastAPI dependencies that read it.

What a package above this one keeps for the app's lifetime (the config cache, the chat
runtime, …) is a *part*: ``create_app`` builds it with the app (:meth:`AppState.add`) and
the package reads it back by its class (:meth:`AppState.part`), typed, through an accessor
or dependency of its own. Nothing is created on first use, and nothing but the attributes
declared here can be set on the state.
"""

from __future__ import annotations

from typing import Annotated, Protocol, TypeVar, cast, runtime_checkable

from authlib.integrations.starlette_client import (  # type: ignore[import-untyped]
    StarletteOAuth2App,
)
from celery import Celery
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import State

from kithost.db import Sessionmaker
from kithost.kit.crypto import SecretBox
from kithost.kit.outbound import Resolver, system_resolver
from kithost.kit.ratelimit import RateLimiter
from kithost.settings import Settings

T = TypeVar("T")


@runtime_checkable
class Closing(Protocol):
    """A part holding what must be let go of when the app stops (tasks, a thread, a batch
    being written)."""

    async def aclose(self) -> None: ...


class AppState(State):
    """``app.state`` of a Kithost app (a Starlette ``State``, as FastAPI types it)."""

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
    outbound_resolver: Resolver
    """How names in tenant-chosen URLs resolve: the system's (a test may set its own
    before the chat runtime is built)."""
    _parts: dict[type[object], object]

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
        self.outbound_resolver = system_resolver
        self._parts = {}

    def __setattr__(self, name: str, value: object) -> None:
        if name not in _DECLARED:
            raise AttributeError(f"AppState has no {name!r}: declare it, or add it as a part")
        object.__setattr__(self, name, value)  # a plain attribute: read without __getattr__

    def add(self, *parts: object) -> None:
        """Make each of ``parts`` the app's one of its class (replacing any before it)."""
        for part in parts:
            self._parts[type(part)] = part

    def part(self, kind: type[T]) -> T:
        """The app's ``kind``, added by ``create_app``."""
        return cast(T, self._parts[kind])  # keyed by its own class: a ``kind``

    async def aclose(self) -> None:
        """Close the parts that hold anything, the last added first (a part is added after
        those it uses), then the rate limiter and the engine."""
        for part in reversed(self._parts.values()):
            if isinstance(part, Closing):
                await part.aclose()
        await self.rate_limiter.aclose()
        await self.engine.dispose()


_DECLARED = frozenset(AppState.__annotations__)


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
