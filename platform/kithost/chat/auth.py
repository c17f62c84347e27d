"""Session tokens on the chat route, verified once per token and page.

A token is a signed JWT bound to widget, end user and origin, minutes long, and the loader
sends the same one with every request until it refreshes it: verifying it (signing keys
from the database, an ES256 signature) once and keeping the result until it expires saves
both on every later request. Keyed by the whole token, widget and origin, so nothing but
that exact token from that page ever matches.
"""

from __future__ import annotations

import time

from cachetools import TLRUCache

from kithost.db import Sessionmaker
from kithost.errors import Unauthorized
from kithost.sessions import tokens
from kithost.sessions.tokens import VerifiedSession
from kithost.settings import Settings

MAX_TOKENS = 10_000


class VerifiedTokens:
    def __init__(self, settings: Settings, sessionmaker: Sessionmaker) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self._verified: TLRUCache[tuple[str, str, str], VerifiedSession] = TLRUCache(
            maxsize=MAX_TOKENS, ttu=_expires_at, timer=time.time
        )

    async def verify(self, token: str, *, public_key: str, origin: str) -> VerifiedSession:
        """The token's claims (``sessions.tokens.verify``); 401 ``invalid_session_token``."""
        key = (token, public_key, origin)
        claims = self._verified.get(key)
        if claims is not None:
            return claims
        async with self.sessionmaker() as session:
            claims = await tokens.verify(
                session, self.settings, token, public_key=public_key, origin=origin
            )
        self._verified[key] = claims
        return claims


def _expires_at(_key: object, claims: VerifiedSession, _now: float) -> float:
    """A verified token is kept until it expires (or the least recently used goes first)."""
    return claims.expires_at


def missing_token() -> Unauthorized:
    return Unauthorized(
        "Send the Kithost session token as a Bearer token.",
        code="missing_session_token",
        headers={"WWW-Authenticate": "Bearer"},
    )
