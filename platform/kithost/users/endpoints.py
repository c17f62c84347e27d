"""Dashboard sign-in: email and password, or single sign-on; the dashboard session behind the
sign-in cookie.

Signing in sets the sign-in cookie and returns the CSRF token the dashboard echoes in
``X-CSRF-Token`` on every write (logout and password change included).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import cookies, oidc
from kithost.auth.dependencies import CurrentUser, OptionalUser
from kithost.auth.roles import ALL_SCOPES, scopes_of
from kithost.db import DbSession
from kithost.kit.ratelimit import client_key
from kithost.kit.schemas import problems
from kithost.models import User
from kithost.settings import Settings
from kithost.state import AppRateLimiter, AppSettings, app_state
from kithost.users import repository as users_repository
from kithost.users import service as users
from kithost.users.schemas import (
    Login,
    PasswordChange,
    SignedIn,
    SignedInUser,
    SignInMethods,
    SignInStatus,
    TenantRole,
)

router = APIRouter(prefix="/auth", tags=["auth"])

DASHBOARD_PATH = "/admin/"


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _signed_in(
    session: AsyncSession, settings: Settings, user: User, csrf_token: str
) -> SignedIn:
    memberships = await users_repository.memberships(session, user.id)
    return SignedIn(
        user=SignedInUser(
            id=user.id,
            email=user.email,
            name=user.name,
            is_platform_admin=user.is_platform_admin,
            memberships=[
                TenantRole(
                    slug=t.slug,
                    name=t.name,
                    role=r,
                    scopes=sorted(ALL_SCOPES if user.is_platform_admin else scopes_of(r, t)),
                )
                for t, r in memberships
            ],
        ),
        csrf_token=csrf_token,
        visitor_url=settings.visitor_base_url,
    )


async def _sign_in(
    session: AsyncSession, settings: Settings, request: Request, response: Response, user: User
) -> cookies.SignInCookie:
    signed_in = await cookies.sign_in(
        session,
        settings,
        user,
        replacing=request.cookies.get(cookies.SIGN_IN_COOKIE),
        ip=_client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    cookies.set_cookie(response, settings, signed_in)
    return signed_in


@router.post(
    "/login",
    summary="Sign in with email and password (sets the sign-in cookie)",
    responses=problems(401, 422, 429),
)
async def login(
    body: Login,
    request: Request,
    response: Response,
    session: DbSession,
    settings: AppSettings,
    limiter: AppRateLimiter,
) -> SignedIn:
    user = await users.authenticate(
        session, limiter, body.email, body.password, ip=client_key(_client_ip(request))
    )
    cookie = await _sign_in(session, settings, request, response, user)
    return await _signed_in(session, settings, user, cookie.csrf_token)


@router.get("/methods", summary="How users may sign in (the sign-in screen's buttons)")
async def methods(request: Request) -> SignInMethods:
    return SignInMethods(oidc=app_state(request).oidc is not None)


@router.get(
    "/me", summary="The signed-in user and the sign-in cookie's CSRF token", responses=problems(401)
)
async def me(
    principal: CurrentUser, request: Request, session: DbSession, settings: AppSettings
) -> SignedIn:
    # CurrentUser resolved a sign-in cookie, so the request carries one.
    csrf_token = cookies.csrf_token(settings, request.cookies[cookies.SIGN_IN_COOKIE])
    return await _signed_in(session, settings, principal.user, csrf_token)


@router.get(
    "/status",
    summary="Whether a dashboard user is signed in: who, or null (200 either way)",
    # The sign-in cookie is optional here (OpenAPI's empty requirement beside it).
    openapi_extra={"security": [{}]},
)
async def sign_in_status(
    principal: OptionalUser, request: Request, session: DbSession, settings: AppSettings
) -> SignInStatus:
    """What ``/auth/me`` answers, or ``signed_in: null`` where it answers 401: the
    dashboard's first question, whose 401 a signed-out visitor's browser would log as an
    error. Open to anyone: the sign-in cookie, if present, is resolved as for any route."""
    if principal is None:
        return SignInStatus(signed_in=None)
    csrf_token = cookies.csrf_token(settings, request.cookies[cookies.SIGN_IN_COOKIE])
    return SignInStatus(signed_in=await _signed_in(session, settings, principal.user, csrf_token))


@router.post(
    "/logout",
    summary="Sign out: end this dashboard session and clear its cookie",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403),
)
async def logout(
    principal: CurrentUser, response: Response, session: DbSession, settings: AppSettings
) -> None:
    await users.sign_out(session, principal.dashboard_session_id)
    cookies.clear_cookie(response, settings)


@router.post(
    "/password",
    summary="Change the password; the user's other dashboard sessions end",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 422, 429),
)
async def change_password(
    body: PasswordChange, principal: CurrentUser, session: DbSession, limiter: AppRateLimiter
) -> None:
    await users.change_password(
        session, limiter, principal, body.current_password, body.new_password
    )


@router.get(
    "/oidc/login",
    summary="Sign in with the identity provider (redirects there)",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses=problems(404, 503),
)
async def oidc_login(client: oidc.OidcClient, request: Request, settings: AppSettings) -> Response:
    redirect_uri = settings.base_url + request.app.url_path_for("oidc_callback")
    return await oidc.redirect_to_provider(client, request, redirect_uri)


@router.get(
    "/oidc/callback",
    summary="Where the identity provider sends the user back (redirects to the dashboard)",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses=problems(400, 403, 404, 422, 503),
)
async def oidc_callback(
    client: oidc.OidcClient, request: Request, session: DbSession, settings: AppSettings
) -> Response:
    identity = await oidc.verified_identity(client, request)
    user = await users.sign_in_with_oidc(
        session, identity.email, identity.name, allow_signup=settings.oidc_allow_signup
    )
    response = RedirectResponse(DASHBOARD_PATH, status_code=status.HTTP_303_SEE_OTHER)
    await _sign_in(session, settings, request, response, user)
    return response
