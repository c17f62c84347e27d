"""Kithost session tokens: what a self-hosted widget's ChatKit sends to ``/v1/chatkit/{pk}``.

An ES256 JWT signed with Kithost's keys (``auth.signing``): audience = the widget,
subject = the end user, the page's origin in ``origin``, minutes long
(``KITHOST_SESSION_TOKEN_TTL_SECONDS``). A token is only good for the widget and origin it
was minted for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import signing
from kithost.errors import Unauthorized
from kithost.kit.crypto import SecretBox
from kithost.settings import Settings


@dataclass(frozen=True)
class SessionToken:
    token: str
    expires_at: int


@dataclass(frozen=True)
class SessionClaims:
    end_user_id: str
    origin: str
    tenant_id: str
    widget_id: str


def audience(public_key: str) -> str:
    return f"kithost:widget:{public_key}"


async def issue(
    session: AsyncSession,
    settings: Settings,
    box: SecretBox,
    *,
    public_key: str,
    claims: SessionClaims,
) -> SessionToken:
    now = int(time.time())
    token = await signing.sign(
        session,
        box,
        {
            "iss": settings.base_url,
            "aud": audience(public_key),
            "sub": claims.end_user_id,
            "origin": claims.origin,
            "tenant": claims.tenant_id,
            "widget": claims.widget_id,
        },
        settings.session_token_ttl_seconds,
        now=now,
    )
    return SessionToken(token, now + settings.session_token_ttl_seconds)


@dataclass(frozen=True)
class VerifiedSession(SessionClaims):
    expires_at: int


async def verify(
    session: AsyncSession, settings: Settings, token: str, *, public_key: str, origin: str
) -> VerifiedSession:
    """The claims of a session token minted for this widget and origin; 401 otherwise."""
    try:
        claims = await signing.verify(
            session, token, issuer=settings.base_url, audience=audience(public_key)
        )
    except signing.InvalidToken as exc:
        raise _refused() from exc
    if claims.get("origin") != origin:
        raise _refused()
    return VerifiedSession(
        end_user_id=str(claims["sub"]),
        origin=origin,
        tenant_id=str(claims.get("tenant")),
        widget_id=str(claims.get("widget")),
        expires_at=int(claims["exp"]),
    )


def _refused() -> Unauthorized:
    return Unauthorized(
        "The session token is not valid for this widget and page.",
        code="invalid_session_token",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )
