"""Session tokens on the chat route, verified once per token and page.

A token is a signed JWT bound to widget, end user and origin, minutes long, and the loader
sends the same one with every request until it refreshes it: verifying it (signing keys
from the database, an ES256 signature) once and keeping the result until it expires saves
both on every later request. Keyed by the whole token, widget and origin, so nothing but
that exact token from that page ever matches. Each entry keeps the key id that signed it,
and is used only while the process's key ring still trusts that key
(``auth.signing.KeyRing.trusts``, a dict lookup): once a key is withdrawn, or the ring is
due for a reload, the token is verified afresh, so a withdrawn key's tokens are refused
as soon as this process's ring knows of it. A token on a preview key is used only while the
preview's maker may still edit the widget (``widgets.preview.check_maker``, every request).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cachetools import TLRUCache

from kithost.auth import signing
from kithost.db import Sessionmaker
from kithost.errors import Unauthorized
from kithost.sessions import tokens
from kithost.sessions.tokens import VerifiedSession
from kithost.settings import Settings
from kithost.widgets.preview import check_maker, is_preview_key

MAX_TOKENS = 10_000


@dataclass(frozen=True)
class _Verified:
    kid: str
    """The key that signed the token."""
    claims: VerifiedSession


class VerifiedTokens:
    def __init__(self, settings: Settings, sessionmaker: Sessionmaker) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self._keys = signing.sessions_key_ring(sessionmaker)
        self._verified: TLRUCache[tuple[str, str, str], _Verified] = TLRUCache(
            maxsize=MAX_TOKENS, ttu=_expires_at, timer=time.time
        )

    async def verify(self, token: str, *, public_key: str, origin: str) -> VerifiedSession:
        """The token's claims (``sessions.tokens.verify``); 401 ``invalid_session_token``,
        and 404 ``widget_not_found`` on a preview key its maker may no longer use."""
        if is_preview_key(public_key):
            async with self.sessionmaker() as session:
                await check_maker(session, self.settings, public_key)
        key = (token, public_key, origin)
        verified = self._verified.get(key)
        if verified is not None:
            if self._keys.trusts(verified.kid):
                return verified.claims
            self._verified.pop(key, None)  # verified afresh: the ring reloads, the key may be gone
        async with self.sessionmaker() as session:
            claims = await tokens.verify(
                session, self.settings, token, public_key=public_key, origin=origin
            )
        # Verified, so the header is well formed and names the key that signed it.
        self._verified[key] = _Verified(signing.token_kid(token), claims)
        return claims


def _expires_at(_key: object, verified: _Verified, _now: float) -> float:
    """A verified token is kept until it expires (or the least recently used goes first)."""
    return verified.claims.expires_at


def missing_token() -> Unauthorized:
    return Unauthorized(
        "Send the Kithost session token as a Bearer token.",
        code="missing_session_token",
        headers={"WWW-Authenticate": "Bearer"},
    )
