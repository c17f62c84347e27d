"""Dashboard sessions: a signed cookie holding a random token, its hash in the database.

The cookie is HttpOnly, SameSite=Lax, Secure when Kithost is served over https; every
state-changing request made with it must echo the session's CSRF token in
``X-CSRF-Token``. Sessions end at expiry, at logout, or when revoked server-side.
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

COOKIE = "kithost_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class NewSession:
    record: DashboardSession
    cookie: str
    csrf_token: str


def _signer(settings: Settings) -> Signer:
    # itsdangerous signs with the last key and accepts all of them.
    keys = list(reversed(settings.keys().derived(Purpose.dashboard_sessions)))
    return Signer(keys, salt="kithost.dashboard-session")


async def open_session(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    ip: str | None,
    user_agent: str | None,
) -> NewSession:
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
    return NewSession(record, cookie, csrf_token(settings, cookie))


async def resolve(
    session: AsyncSession, settings: Settings, cookie: str
) -> tuple[DashboardSession, User] | None:
    try:
        token = _signer(settings).unsign(cookie).decode()
    except BadSignature:
        return None
    return await repository.live_dashboard_session(session, hash_secret(token), utcnow())


def csrf_token(settings: Settings, cookie: str) -> str:
    """The CSRF token of the session in ``cookie``: derived, so it needs no storage and a
    page reload can ask for it again (``GET /api/v1/auth/me``)."""
    key = settings.keys().current(Purpose.dashboard_sessions)
    return hmac.new(key, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()


def csrf_matches(settings: Settings, cookie: str, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(csrf_token(settings, cookie), header)


def revoke(record: DashboardSession) -> None:
    record.revoked_at = utcnow()


def set_cookie(response: Response, settings: Settings, new: NewSession) -> None:
    response.set_cookie(
        COOKIE,
        new.cookie,
        max_age=settings.dashboard_session_ttl_hours * 3600,
        httponly=True,
        secure=settings.https,
        samesite="lax",
        path="/",
    )


def clear_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, secure=settings.https, samesite="lax")
