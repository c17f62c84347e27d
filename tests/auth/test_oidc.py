"""Single sign-on against a real OpenID provider on loopback (``oidc-provider-mock``): the
whole redirect dance over HTTP, Kithost's side through ASGI, the provider's over a socket."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from fastapi import FastAPI
from oidc_provider_mock import run_server_in_thread  # type: ignore[import-untyped]
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.auth import cookies
from kithost.models import AuditLogEntry, User
from kithost.settings import Settings
from tests.auth.helpers import ME, client_at
from tests.conftest import create_test_app
from tests.factories import make_user

pytestmark = pytest.mark.filterwarnings(
    # oidc-provider-mock's own use of Authlib's server side.
    "ignore:get_jwt_config:DeprecationWarning"
)

START = "/api/v1/auth/oidc/login"
CALLBACK = "/api/v1/auth/oidc/callback"


@pytest.fixture(scope="session")
def provider_url() -> Iterator[str]:
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
async def provider(provider_url: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=provider_url) as client:
        yield client


def sso_settings(provider_url: str, *, allow_signup: bool) -> dict[str, object]:
    return {
        "oidc_discovery_url": f"{provider_url}/.well-known/openid-configuration",
        "oidc_client_id": "kithost-test",
        "oidc_client_secret": SecretStr("kithost-test-secret"),
        "oidc_allow_signup": allow_signup,
        "public_url": "http://testserver",
    }


@pytest.fixture
def signup_open() -> bool:
    return True


CLOSED = pytest.mark.parametrize("signup_open", [False], ids=["closed"])
"""Sign-up closed: users must exist before their first single sign-on."""


@pytest.fixture
async def kithost(
    settings: Settings, connection: AsyncConnection, provider_url: str, signup_open: bool
) -> AsyncIterator[httpx2.AsyncClient]:
    app = create_test_app(
        settings, connection, **sso_settings(provider_url, allow_signup=signup_open)
    )
    async with client_at(app, "127.0.0.1") as client:
        yield client


def new_email() -> str:
    return f"sso-{secrets.token_hex(4)}@example.test"


async def authorize(
    kithost: httpx2.AsyncClient, provider: httpx2.AsyncClient, claims: dict[str, Any]
) -> httpx2.URL:
    """Start at Kithost, sign in at the provider as a user with ``claims``; returns the URL
    the provider sends the browser back to."""
    sub = secrets.token_hex(8)
    assert (await provider.put(f"/users/{sub}", json=claims)).status_code == 204
    start = await kithost.get(START)
    assert start.status_code == 302
    granted = await provider.post(start.headers["location"], data={"sub": sub})
    assert granted.status_code == 302
    return httpx2.URL(granted.headers["location"])


async def sign_in(
    kithost: httpx2.AsyncClient, provider: httpx2.AsyncClient, claims: dict[str, Any]
) -> httpx2.Response:
    return await kithost.get(await authorize(kithost, provider, claims))


def problem(response: httpx2.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


async def test_signup_when_open(
    kithost: httpx2.AsyncClient, provider: httpx2.AsyncClient, db: AsyncSession
) -> None:
    email = new_email()
    start = await kithost.get(START)
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["scope"] == ["openid email profile"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"http://testserver{CALLBACK}"]
    assert {"state", "nonce", "code_challenge"} <= query.keys()
    flow_cookie = start.headers["set-cookie"]
    assert flow_cookie.startswith("kithost_oidc=")
    assert "path=/api/v1/auth/oidc;" in flow_cookie
    assert "httponly; samesite=lax" in flow_cookie
    assert "secure" not in flow_cookie

    callback = await authorize(
        kithost, provider, {"email": email.upper(), "email_verified": True, "name": "Sso Person"}
    )
    signed_in = await kithost.get(callback)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/admin/")
    assert cookies.SIGN_IN_COOKIE in kithost.cookies

    me = (await kithost.get(ME)).json()["user"]
    assert (me["email"], me["name"], me["memberships"]) == (email, "Sso Person", [])
    user = (await db.execute(select(User).where(User.email == email))).scalar_one()
    assert (str(user.id), user.password_hash) == (me["id"], None)
    created = await db.scalar(select(AuditLogEntry).where(AuditLogEntry.target_id == str(user.id)))
    assert created is not None
    assert (created.action, created.actor_type) == ("user.created", "system")

    replayed = await kithost.get(callback)
    assert problem(replayed) == (400, "oidc_state_mismatch")


@CLOSED
async def test_no_signup_when_closed(
    kithost: httpx2.AsyncClient, provider: httpx2.AsyncClient, db: AsyncSession
) -> None:
    email = new_email()
    refused = await sign_in(kithost, provider, {"email": email, "email_verified": True})
    assert problem(refused) == (403, "signup_disabled")
    assert cookies.SIGN_IN_COOKIE not in kithost.cookies
    assert (await db.execute(select(User).where(User.email == email))).first() is None


@CLOSED
async def test_existing_user_matched_by_email(
    kithost: httpx2.AsyncClient, provider: httpx2.AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    claims = {"email": user.email.upper(), "email_verified": True, "name": "Someone Else"}
    assert (await sign_in(kithost, provider, claims)).status_code == 303
    me = (await kithost.get(ME)).json()["user"]
    assert (me["id"], me["email"], me["name"]) == (str(user.id), user.email, "")


@CLOSED
async def test_signing_in_ends_the_session_the_browser_had(
    kithost: httpx2.AsyncClient, provider: httpx2.AsyncClient, db: AsyncSession
) -> None:
    """Session fixation: single sign-on ends the dashboard session of the sign-in cookie the
    browser came back with, whoever's it was, and sets a fresh one."""
    first, second = await make_user(db), await make_user(db)
    assert (await sign_in(kithost, provider, verified(first))).status_code == 303
    firsts = {"Cookie": f"{cookies.SIGN_IN_COOKIE}={kithost.cookies[cookies.SIGN_IN_COOKIE]}"}

    assert (await sign_in(kithost, provider, verified(second))).status_code == 303
    assert (await kithost.get(ME, headers=firsts)).status_code == 401
    assert (await kithost.get(ME)).json()["user"]["email"] == second.email


def verified(user: User) -> dict[str, Any]:
    return {"email": user.email, "email_verified": True}


@CLOSED
async def test_disabled_user_refused(
    kithost: httpx2.AsyncClient, provider: httpx2.AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    user.is_active = False
    await db.flush()
    refused = await sign_in(kithost, provider, {"email": user.email, "email_verified": True})
    assert problem(refused) == (403, "account_disabled")


async def test_tampered_state_refused(
    kithost: httpx2.AsyncClient, provider: httpx2.AsyncClient
) -> None:
    callback = await authorize(kithost, provider, {"email": new_email(), "email_verified": True})
    query = dict(callback.params)
    tampered = callback.copy_with(
        query=urlencode({**query, "state": query["state"] + "x"}).encode()
    )
    assert problem(await kithost.get(tampered)) == (400, "oidc_state_mismatch")
    assert cookies.SIGN_IN_COOKIE not in kithost.cookies


async def test_callback_from_another_browser_refused(
    kithost: httpx2.AsyncClient, provider: httpx2.AsyncClient
) -> None:
    callback = await authorize(kithost, provider, {"email": new_email(), "email_verified": True})
    kithost.cookies.clear()
    assert problem(await kithost.get(callback)) == (400, "oidc_state_mismatch")


@pytest.mark.parametrize(
    "verified", [{"email_verified": False}, {}, {"email_verified": "true"}], ids=str
)
async def test_unverified_email_refused(
    kithost: httpx2.AsyncClient,
    provider: httpx2.AsyncClient,
    db: AsyncSession,
    verified: dict[str, object],
) -> None:
    email = new_email()
    refused = await sign_in(kithost, provider, {"email": email, **verified})
    assert problem(refused) == (403, "email_not_verified")
    assert (await db.execute(select(User).where(User.email == email))).first() is None


async def test_provider_error_refused(
    kithost: httpx2.AsyncClient, provider: httpx2.AsyncClient
) -> None:
    start = await kithost.get(START)
    denied = await provider.post(start.headers["location"], data={"action": "deny"})
    assert parse_qs(urlsplit(denied.headers["location"]).query)["error"] == ["access_denied"]
    refused = await kithost.get(denied.headers["location"])
    assert problem(refused) == (400, "oidc_provider_error")
    assert "access_denied" in refused.json()["detail"]


async def test_disabled_without_configuration(client: httpx2.AsyncClient) -> None:
    for url in (START, CALLBACK):
        assert problem(await client.get(url)) == (404, "oidc_disabled")


async def test_flow_cookie_is_secure_over_https(
    settings: Settings, connection: AsyncConnection, provider_url: str
) -> None:
    overrides = {**sso_settings(provider_url, allow_signup=True), "public_url": "https://k.example"}
    async with client_at(create_test_app(settings, connection, **overrides), "127.0.0.1") as client:
        start = await client.get(START)
    assert start.status_code == 302
    assert start.headers["set-cookie"].startswith("kithost_oidc=")
    assert start.headers["set-cookie"].endswith("; secure")


async def test_unreachable_provider(settings: Settings, connection: AsyncConnection) -> None:
    app: FastAPI = create_test_app(
        settings, connection, **sso_settings("http://127.0.0.1:1", allow_signup=True)
    )
    async with client_at(app, "127.0.0.1") as client:
        assert problem(await client.get(START)) == (503, "oidc_unavailable")


async def test_the_sign_in_screen_learns_that_single_sign_on_is_on(
    kithost: httpx2.AsyncClient, client: httpx2.AsyncClient
) -> None:
    methods = "/api/v1/auth/methods"
    assert (await kithost.get(methods)).json() == {"password": True, "oidc": True}
    assert (await client.get(methods)).json() == {"password": True, "oidc": False}
