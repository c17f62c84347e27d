"""Kithost session tokens: what a self-hosted widget's ChatKit sends to ``/v1/chatkit/{pk}``.

An ES256 JWT signed with Kithost's keys (``auth.signing``): audience = the widget,
subject = the end user, the page's origin in ``origin``, minutes long
(``KITHOST_SESSION_TOKEN_TTL_SECONDS``). A token is only good for the widget and origin it
was minted for, and only as long as :func:`issue` makes one live: a token signed with
Kithost's key (say a leaked one) that claims to live longer, or to belong to a session that
started after it, is refused (the chat route keeps a verified token until it expires).

A framed chat's token (its ``origin`` Kithost's own: the framed page ``/w/{pk}``) also
names the page that frames it, its *embedder*, in ``emb`` (an origin, as the framed page
reported it when the session was first minted; refreshes keep it). Every refresh and chat
request checks it against the widget's allowed origins as they are now
(``sessions.service.check_embedder``), so an origin removed from the widget stops a chat
already open there within the config cache's seconds, not at the session's end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import signing
from kithost.errors import Unauthorized
from kithost.kit.crypto import SecretBox
from kithost.settings import Settings


@dataclass(frozen=True)
class SessionToken:
    token: str
    expires_at: int


@dataclass(frozen=True, kw_only=True)
class SessionClaims:
    end_user_id: str
    origin: str
    tenant_id: str
    widget_id: str
    identity_expires_at: int | None = None
    """A verified user's identity token expiry (``idexp``): no token or refresh outlives it."""
    secret_fingerprint: str | None = None
    """The identity secret that verified the user (``idk``), when one did."""
    started_at: int = field(default_factory=lambda: int(time.time()))
    """When the session's first token was minted (``sst``): no refresh outlives
    ``KITHOST_SESSION_MAX_AGE_HOURS`` from then."""
    embedder: str | None = None
    """The origin of the page framing a framed chat (``emb``); None for any other token."""


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
    lifetime = min(
        settings.session_token_ttl_seconds,
        claims.started_at + settings.session_max_age_hours * 3600 - now,
    )
    if lifetime <= 0:
        raise Unauthorized(
            "This session has reached its maximum age; identify again.", code="session_expired"
        )
    if claims.identity_expires_at is not None:
        lifetime = min(lifetime, claims.identity_expires_at - now)
        if lifetime <= 0:
            raise Unauthorized(
                "The identity token behind this session has expired; identify again.",
                code="identity_expired",
            )
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
            "sst": claims.started_at,
            **({"idexp": claims.identity_expires_at} if claims.identity_expires_at else {}),
            **({"idk": claims.secret_fingerprint} if claims.secret_fingerprint else {}),
            **({"emb": claims.embedder} if claims.embedder else {}),
        },
        lifetime,
        now=now,
    )
    return SessionToken(token, now + lifetime)


@dataclass(frozen=True, kw_only=True)
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
    if claims.get("origin") != origin or not _as_minted(settings, claims):
        raise _refused()
    return VerifiedSession(
        end_user_id=str(claims["sub"]),
        origin=origin,
        tenant_id=str(claims.get("tenant")),
        widget_id=str(claims.get("widget")),
        identity_expires_at=_optional_int(claims.get("idexp")),
        secret_fingerprint=_optional_str(claims.get("idk")),
        # Tokens minted before ``sst`` existed started at the latest when they were issued.
        started_at=_optional_int(claims.get("sst")) or int(claims["iat"]),
        embedder=_optional_str(claims.get("emb")),
        expires_at=int(claims["exp"]),
    )


def _as_minted(settings: Settings, claims: dict[str, Any]) -> bool:
    """Whether the token's times are ones :func:`issue` could have given it: it lives no
    longer than ``KITHOST_SESSION_TOKEN_TTL_SECONDS`` from ``iat`` (which ``signing.verify``
    holds to no later than now), its session started (``sst``) no later than it was issued,
    and it outlives no identity token behind it (``idexp``). A token minted before the TTL
    was lowered fails too, and its page mints a new one."""
    issued_at, expires_at = claims["iat"], claims["exp"]
    if expires_at - issued_at > settings.session_token_ttl_seconds:
        return False
    started_at = claims.get("sst")
    if started_at is not None and (_optional_int(started_at) is None or started_at > issued_at):
        return False
    identity_expires_at = claims.get("idexp")
    return identity_expires_at is None or (
        _optional_int(identity_expires_at) is not None and expires_at <= identity_expires_at
    )


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _refused() -> Unauthorized:
    return Unauthorized(
        "The session token is not valid for this widget and page.",
        code="invalid_session_token",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )
