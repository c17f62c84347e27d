"""The dashboard's sign-in cookie: signed, holding a random token whose hash is a dashboard
session's row (table ``dashboard_sessions``).

The cookie is HttpOnly, SameSite=Lax, Secure when Kithost is served over https; every
state-changing request made with it must echo its CSRF token in ``X-CSRF-Token``. A
sign-in ends at expiry, at logout, or when revoked server-side.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Response
from itsdangerous import BadSignature, Signer
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import repository
from kithost.kit.keys import Purpose
from kithost.kit.tokens import hash_secret
from kithost.models import DashboardSession, User
from kithost.models.base import utcnow
from kithost.settings import Settings

SIGN_IN_COOKIE = "kithost_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class SignInCookie:
    """A sign-in just made: its row, the cookie's value and the cookie's CSRF token."""

    record: DashboardSession
    value: str
    csrf_token: str


def _signer(settings: Settings) -> Signer:
    # itsdangerous signs with the last key and accepts all of them. The salt and the key's
    # purpose keep their old names: cookies already set stay valid.
    keys = list(reversed(settings.keys().derived(Purpose.dashboard_sessions)))
    return Signer(keys, salt="kithost.dashboard-session")


async def sign_in(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    replacing: str | None,
    ip: str | None,
    user_agent: str | None,
) -> SignInCookie:
    """Open a dashboard session for ``user``. The one of ``replacing``, the sign-in cookie
    the request carried, ends, whoever's it was: a browser never keeps a session it had
    before signing in (session fixation), and the new one has a token of its own."""
    if replacing is not None and (old := _token(settings, replacing)) is not None:
        await repository.revoke_dashboard_session(session, hash_secret(old), utcnow())
    token = secrets.token_urlsafe(32)
    record = DashboardSession(
        user_id=user.id,
        token_hash=hash_secret(token),
        expires_at=utcnow() + timedelta(hours=settings.dashboard_session_ttl_hours),
        ip=ip,
        user_agent=(user_agent or "")[:255] or None,
    )
    session.add(record)
    user.last_login_at = utcnow()
    await session.flush()
    cookie = _signer(settings).sign(token).decode()
    return SignInCookie(record, cookie, csrf_token(settings, cookie))


async def resolve(
    session: AsyncSession, settings: Settings, cookie: str
) -> tuple[DashboardSession, User] | None:
    token = _token(settings, cookie)
    if token is None:
        return None
    return await repository.live_dashboard_session(session, hash_secret(token), utcnow())


def _token(settings: Settings, cookie: str) -> str | None:
    """The token a sign-in cookie carries; None when its signature is not ours."""
    try:
        return _signer(settings).unsign(cookie).decode()
    except BadSignature:
        return None


def csrf_token(settings: Settings, cookie: str) -> str:
    """The CSRF token of the sign-in ``cookie``: derived, so it needs no storage and a
    page reload can ask for it again (``GET /api/v1/auth/me``)."""
    key = settings.keys().current(Purpose.dashboard_sessions)
    return hmac.new(key, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()


def csrf_matches(settings: Settings, cookie: str, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(csrf_token(settings, cookie), header)


def revoke(record: DashboardSession) -> None:
    record.revoked_at = utcnow()


def set_cookie(response: Response, settings: Settings, signed_in: SignInCookie) -> None:
    response.set_cookie(
        SIGN_IN_COOKIE,
        signed_in.value,
        max_age=settings.dashboard_session_ttl_hours * 3600,
        httponly=True,
        secure=settings.https,
        samesite="lax",
        path="/",
    )


def clear_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SIGN_IN_COOKIE, path="/", httponly=True, secure=settings.https, samesite="lax"
    )
