"""Dashboard sign-in with email and password: the cookie, /me, logout, password changes and
the throttling of failed attempts."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Literal

import httpx2
import pytest
from argon2 import PasswordHasher, extract_parameters, profiles
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.app import create_app
from kithost.auth import cookies, passwords
from kithost.auth.passwords import check_password_rules
from kithost.auth.principals import CLI
from kithost.errors import InvalidInput
from kithost.kit import ratelimit
from kithost.models import AuditLogEntry, DashboardSession, Role, User
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.users.service import (
    FAILURES_PER_ACCOUNT,
    FAILURES_PER_ACCOUNT_CEILING,
    FAILURES_PER_IP,
    create_user,
)
from tests.auth.helpers import ME, client_at, redis_limiter
from tests.conftest import create_test_app
from tests.factories import PASSWORD, ROTATING_CLIENTS, login, make_member, make_tenant, make_user

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
STATUS = "/api/v1/auth/status"
PASSWORD_URL = "/api/v1/auth/password"
NEW_PASSWORD = "a brand new passphrase"


def cookie_attributes(response: httpx2.Response) -> dict[str, str]:
    """The attributes of the sign-in cookie set by ``response`` (names lower-cased)."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == cookies.SIGN_IN_COOKIE:
            parts = [p.strip() for p in rest.split(";")[1:]]
            return {k.lower(): v for k, _, v in (p.partition("=") for p in parts)}
    raise AssertionError("no sign-in cookie set")


async def sign_in(
    client: httpx2.AsyncClient, email: str, password: str = PASSWORD
) -> httpx2.Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


async def test_login_sets_the_cookie_and_answers_who(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, f"t-{secrets.token_hex(3)}")
    user = await make_member(db, tenant, Role.editor)

    response = await sign_in(client, f"  {user.email.upper()} ")
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {
        "id": str(user.id),
        "email": user.email,
        "name": "",
        "is_platform_admin": False,
        "memberships": [
            {
                "slug": tenant.slug,
                "name": tenant.name,
                "role": "editor",
                "scopes": [
                    "analytics:read",
                    "knowledge:read",
                    "knowledge:write",
                    "members:read",
                    "widgets:read",
                    "widgets:write",
                ],
            }
        ],
    }
    assert cookie_attributes(response) == {
        "httponly": "",
        "max-age": str(12 * 3600),
        "path": "/",
        "samesite": "lax",
    }

    me = await client.get(ME)
    assert me.status_code == 200
    assert me.json() == body
    await db.refresh(user)
    assert user.last_login_at is not None

    tenant.editors_read_conversations = True  # the dashboard shows them Conversations then
    await db.flush()
    [membership] = (await client.get(ME)).json()["user"]["memberships"]
    assert "conversations:read" in membership["scopes"]


async def test_cookie_is_secure_over_https(
    settings: Settings, connection: AsyncConnection, db: AsyncSession
) -> None:
    user = await make_user(db)
    app = create_test_app(settings, connection, public_url="https://kithost.example")
    async with client_at(app, "127.0.0.1") as client:
        response = await sign_in(client, user.email)
    assert response.status_code == 200
    assert "secure" in cookie_attributes(response)


def parameters(password_hash: str) -> str:
    """An argon2 hash without its salt and digest: the algorithm and its cost."""
    return password_hash.rsplit("$", 2)[0]


def test_production_parameters() -> None:
    """Production hashes with RFC 9106's low-memory profile (the suite swaps in a cheap one)."""
    assert passwords.PARAMETERS == profiles.RFC_9106_LOW_MEMORY
    production = PasswordHasher.from_parameters(passwords.PARAMETERS)
    assert parameters(production.hash(PASSWORD)) == "$argon2id$v=19$m=65536,t=3,p=4"


async def test_sign_in_rehashes_a_password_of_other_parameters(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1).hash(PASSWORD)
    await db.flush()
    old = user.password_hash

    assert (await sign_in(client, user.email)).status_code == 200
    await db.refresh(user)
    assert user.password_hash is not None
    assert user.password_hash != old
    assert not passwords.needs_rehash(user.password_hash)
    assert passwords.verify_password(user.password_hash, PASSWORD)
    # A hash of today's parameters is left alone.
    current = user.password_hash
    assert (await sign_in(client, user.email)).status_code == 200
    await db.refresh(user)
    assert user.password_hash == current


async def test_refusals_look_alike(
    client: httpx2.AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(db)
    disabled = await make_user(db)
    disabled.is_active = False
    no_password = await make_user(db)
    no_password.password_hash = None
    await db.flush()
    verified: list[str] = []

    class Hasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verified.append(parameters(str(hash)))
            return super().verify(hash, password)

    assert user.password_hash is not None
    hasher = Hasher.from_parameters(extract_parameters(user.password_hash))
    monkeypatch.setattr(passwords, "_hasher", hasher)

    attempts = [
        (user.email, "not the password"),
        (f"nobody-{secrets.token_hex(4)}@example.test", PASSWORD),
        (disabled.email, PASSWORD),
        (no_password.email, PASSWORD),
    ]
    answers = []
    for email, password in attempts:
        response = await sign_in(client, email, password)
        assert "set-cookie" not in response.headers
        answers.append((response.status_code, response.json()["code"], response.json()["detail"]))
    assert answers == [(401, "invalid_credentials", "Wrong email or password.")] * 4
    # The same argon2 work for each: one verification with the same parameters.
    assert verified == [parameters(str(user.password_hash))] * 4


async def test_me_needs_a_session(client: httpx2.AsyncClient) -> None:
    response = await client.get(ME)
    assert (response.status_code, response.json()["code"]) == (401, "unauthenticated")


async def test_logout_needs_csrf_and_ends_the_session(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    user = await make_user(db)
    signed_in = await sign_in(client, user.email)
    cookie = {"Cookie": f"{cookies.SIGN_IN_COOKIE}={client.cookies[cookies.SIGN_IN_COOKIE]}"}
    csrf = {cookies.CSRF_HEADER: signed_in.json()["csrf_token"]}
    assert (await client.get(ME)).json()["csrf_token"] == csrf[cookies.CSRF_HEADER]

    forged = await client.post(LOGOUT)
    assert (forged.status_code, forged.json()["code"]) == (403, "csrf_failed")
    assert (await client.get(ME)).status_code == 200

    out = await client.post(LOGOUT, headers=csrf)
    assert out.status_code == 204
    assert cookie_attributes(out)["max-age"] == "0"
    assert cookies.SIGN_IN_COOKIE not in client.cookies

    replayed = await client.get(ME, headers=cookie)
    assert (replayed.status_code, replayed.json()["code"]) == (401, "unauthenticated")


async def test_status_answers_who_is_signed_in_or_nobody_without_a_401(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    """The dashboard's first question: a signed-out visitor's browser logs a 401 as an error."""
    nobody = await client.get(STATUS)
    assert (nobody.status_code, nobody.json()) == (200, {"signed_in": None})
    forged = await client.get(STATUS, headers={"Cookie": f"{cookies.SIGN_IN_COOKIE}=forged"})
    assert (forged.status_code, forged.json()) == (200, {"signed_in": None})

    user = await make_user(db)
    signed_in = await sign_in(client, user.email)
    cookie = {"Cookie": f"{cookies.SIGN_IN_COOKIE}={client.cookies[cookies.SIGN_IN_COOKIE]}"}
    status = await client.get(STATUS)
    assert (status.status_code, status.json()) == (200, {"signed_in": signed_in.json()})
    assert status.json()["signed_in"] == (await client.get(ME)).json()

    out = await client.post(LOGOUT, headers={cookies.CSRF_HEADER: signed_in.json()["csrf_token"]})
    assert out.status_code == 204
    ended = await client.get(STATUS, headers=cookie)
    assert (ended.status_code, ended.json()) == (200, {"signed_in": None})


Ending = Literal["revoked", "expired", "deactivated"]


async def end(db: AsyncSession, user: User, how: Ending) -> None:
    """End ``user``'s dashboard sessions server-side: revoked, past their expiry, or by
    disabling the account."""
    if how == "deactivated":
        user.is_active = False
    else:
        column = "revoked_at" if how == "revoked" else "expires_at"
        await db.execute(
            update(DashboardSession)
            .where(DashboardSession.user_id == user.id)
            .values({column: utcnow() - timedelta(seconds=1)})
        )
    await db.flush()


@pytest.mark.parametrize("how", ["revoked", "expired", "deactivated"])
async def test_status_answers_nobody_for_a_session_ended_server_side(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession, how: Ending
) -> None:
    """``/auth/status`` resolves the sign-in cookie as every other route does: where
    ``/auth/me`` is 401, it answers nobody."""
    user = await make_user(db)
    me = await login(app, db, user)
    assert (await client.get(STATUS, headers=me.headers)).json()["signed_in"] is not None

    await end(db, user, how)
    assert (await client.get(ME, headers=me.headers)).status_code == 401
    status = await client.get(STATUS, headers=me.headers)
    assert (status.status_code, status.json()) == (200, {"signed_in": None})


async def test_signing_in_ends_the_session_the_browser_had(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    """Session fixation: a successful sign-in ends the dashboard session of the sign-in
    cookie the request carried, whoever's it was, and sets a fresh one; a failed one ends
    nothing."""
    first, second = await make_user(db), await make_user(db)
    assert (await sign_in(client, first.email)).status_code == 200
    firsts = {"Cookie": f"{cookies.SIGN_IN_COOKIE}={client.cookies[cookies.SIGN_IN_COOKIE]}"}

    assert (await sign_in(client, second.email, "wrong")).status_code == 401
    assert (await client.get(ME, headers=firsts)).json()["user"]["email"] == first.email

    assert (await sign_in(client, second.email)).status_code == 200
    seconds = {"Cookie": f"{cookies.SIGN_IN_COOKIE}={client.cookies[cookies.SIGN_IN_COOKIE]}"}
    assert seconds != firsts
    assert (await client.get(ME, headers=firsts)).status_code == 401
    assert (await client.get(ME)).json()["user"]["email"] == second.email

    assert (await sign_in(client, second.email)).status_code == 200  # the same user again
    assert client.cookies[cookies.SIGN_IN_COOKIE] not in seconds["Cookie"]
    assert (await client.get(ME, headers=seconds)).status_code == 401
    assert (await client.get(ME)).json()["user"]["email"] == second.email
    rows = await db.execute(
        select(DashboardSession.revoked_at.is_(None)).where(
            DashboardSession.user_id.in_([first.id, second.id])
        )
    )
    assert sorted(live for (live,) in rows) == [False, False, True]


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short pass", "must be at least 12 characters long"),
        ("x" * 257 + "y", "must be at most 256 characters long"),
        ("z" * 20, "must not be one character repeated"),
        ("my name is Jane.Doe!", "must not contain your email address"),
    ],
)
def test_password_rules_refuse(password: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_password_rules(password, email="jane.doe@example.test", field="new_password")
    assert refused.value.errors is not None
    error = refused.value.errors[0]
    assert (error.field, error.message, error.type) == ("new_password", message, "weak_password")


@pytest.mark.parametrize(
    ("password", "email"),
    [
        ("x" * 11 + "y", "jane.doe@example.test"),
        ("y" * 255 + "z", "jane.doe@example.test"),
        ("bo is my favourite", "bo@example.test"),
    ],
)
def test_password_rules_accept(password: str, email: str) -> None:
    check_password_rules(password, email=email, field="password")


async def test_create_user_applies_the_rules(db: AsyncSession) -> None:
    with pytest.raises(InvalidInput) as refused:
        await create_user(db, CLI, "weak@example.test", password="weakweak")
    assert refused.value.errors is not None
    assert refused.value.errors[0].field == "password"


async def test_password_change(app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession) -> None:
    user = await make_user(db)
    other = await login(app, db, user)
    signed_in = await sign_in(client, user.email)
    csrf = {cookies.CSRF_HEADER: signed_in.json()["csrf_token"]}

    def change(current: str, new: str) -> dict[str, str]:
        return {"current_password": current, "new_password": new}

    forged = await client.post(PASSWORD_URL, json=change(PASSWORD, NEW_PASSWORD))
    assert (forged.status_code, forged.json()["code"]) == (403, "csrf_failed")
    wrong = await client.post(PASSWORD_URL, json=change("nope", NEW_PASSWORD), headers=csrf)
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "current_password"
    weak = await client.post(PASSWORD_URL, json=change(PASSWORD, "too short"), headers=csrf)
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "new_password"
    assert (await client.get(ME, headers=other.headers)).status_code == 200

    changed = await client.post(PASSWORD_URL, json=change(PASSWORD, NEW_PASSWORD), headers=csrf)
    assert changed.status_code == 204
    assert (await client.get(ME)).status_code == 200
    assert (await client.get(ME, headers=other.headers)).status_code == 401
    assert (await sign_in(client, user.email)).status_code == 401
    assert (await sign_in(client, user.email, NEW_PASSWORD)).status_code == 200
    audited = await db.scalar(
        select(AuditLogEntry).where(AuditLogEntry.action == "user.password_changed")
    )
    assert audited is not None
    assert (audited.actor_id, audited.target_id) == (str(user.id), str(user.id))


@pytest.fixture(params=["memory", "redis"])
async def throttled(request: pytest.FixtureRequest, app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with each kind of rate limiter (Redis under a key prefix of its own)."""
    if request.param == "redis":
        app.state.rate_limiter = redis_limiter()
    yield app
    await app.state.rate_limiter.aclose()


def assert_throttled(response: httpx2.Response) -> None:
    assert (response.status_code, response.json()["code"]) == (429, "rate_limited")
    assert 0 < int(response.headers["retry-after"]) <= 15 * 60


async def test_failures_per_account(throttled: FastAPI, db: AsyncSession) -> None:
    user, bystander = await make_user(db), await make_user(db)
    async with client_at(throttled, "192.0.2.1") as client:
        # A success forgets the account's earlier failures.
        for _ in range(FAILURES_PER_ACCOUNT - 1):
            assert (await sign_in(client, user.email, "wrong")).status_code == 401
        assert (await sign_in(client, user.email)).status_code == 200
        for _ in range(FAILURES_PER_ACCOUNT):
            assert (await sign_in(client, user.email, "wrong")).status_code == 401
        assert_throttled(await sign_in(client, user.email))
        assert (await sign_in(client, bystander.email)).status_code == 200
    # A stranger's failures never lock the owner out from an address that has not failed.
    async with client_at(throttled, "192.0.2.2") as owner:
        assert (await sign_in(owner, user.email)).status_code == 200


@pytest.mark.parametrize("limiter", ["memory", "redis"])
async def test_concurrent_wrong_passwords_are_throttled(
    settings: Settings, limiter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attempts are counted before the (slow) password check, so a burst can't slip past.
    The app has an engine of its own: concurrent requests can't share the test's transaction.

    The burst's 40 requests share this test's event loop, which on a busy box (CI's full run)
    comes back to Redis's reply seconds after it arrived: the limiter's socket timeout, a
    wall-clock bound for a Redis gone away (``test_unreachable_redis_is_503``), then took a
    prompt Redis for an outage and answered 503. Here Redis waits as long as the loop does: the
    test proves the counting, not the box's speed."""
    app = create_app(settings)
    if limiter == "redis":
        await app.state.rate_limiter.aclose()
        monkeypatch.setattr(ratelimit, "REDIS_TIMEOUT_SECONDS", None)
        app.state.rate_limiter = redis_limiter()
    email = f"nobody-{secrets.token_hex(4)}@example.test"
    async with app.router.lifespan_context(app), client_at(app, "192.0.2.9") as client:
        burst = await asyncio.gather(*(sign_in(client, email, "wrong") for _ in range(40)))
    codes = [r.status_code for r in burst]
    # At most the account's allowance is checked; which requests get it depends on how the
    # burst's counts of account and address interleave (possibly none under heavy load).
    assert set(codes) <= {401, 429}
    assert codes.count(401) <= FAILURES_PER_ACCOUNT


async def test_account_ceiling_spares_fresh_addresses(app: FastAPI, db: AsyncSession) -> None:
    user = await make_user(db)
    limiter = app.state.rate_limiter
    for _ in range(FAILURES_PER_ACCOUNT_CEILING):
        await limiter.hit(f"password:account:{user.email}", FAILURES_PER_ACCOUNT_CEILING, 60)
    async with client_at(app, "192.0.2.10") as attacker:
        assert (await sign_in(attacker, user.email, "wrong")).status_code == 401
        assert_throttled(await sign_in(attacker, user.email))
    async with client_at(app, "192.0.2.11") as owner:
        assert (await sign_in(owner, user.email)).status_code == 200


async def test_failures_per_address(app: FastAPI, db: AsyncSession) -> None:
    user = await make_user(db)
    async with client_at(app, "198.51.100.7") as client:
        for i in range(FAILURES_PER_IP):
            guess = await sign_in(client, f"guess-{i}@example.test", "wrong")
            assert guess.status_code == 401
        assert_throttled(await sign_in(client, user.email))
    async with client_at(app, "198.51.100.8") as elsewhere:
        assert (await sign_in(elsewhere, user.email)).status_code == 200


@ROTATING_CLIENTS
async def test_a_client_rotating_its_addresses_is_one_address_to_the_throttle(
    app: FastAPI, db: AsyncSession, first: str, address: str
) -> None:
    """Failures count per client (``kit.ratelimit.client_key``: an IPv6 address's /64),
    not per address, which an IPv6 client has more of than any limit counts; the sign-in
    session still records the address itself."""
    user = await make_user(db)
    async with client_at(app, first) as client:
        assert (await sign_in(client, "guess-0@example.test", "wrong")).status_code == 401
    for i in range(1, FAILURES_PER_IP):
        async with client_at(app, address.format(i)) as client:
            guess = await sign_in(client, f"guess-{i}@example.test", "wrong")
            assert guess.status_code == 401
    async with client_at(app, address.format(FAILURES_PER_IP)) as client:
        assert_throttled(await sign_in(client, user.email))
    async with client_at(app, "2001:db8:7:2::1") as elsewhere:
        assert (await sign_in(elsewhere, user.email)).status_code == 200
    recorded = await db.scalar(
        select(DashboardSession.ip).where(DashboardSession.user_id == user.id)
    )
    assert recorded == "2001:db8:7:2::1"


async def test_wrong_current_passwords_are_throttled(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    user: User = await make_user(db)
    me = await login(app, db, user)
    body = {"current_password": "wrong", "new_password": NEW_PASSWORD}
    for _ in range(FAILURES_PER_ACCOUNT):
        assert (await client.post(PASSWORD_URL, json=body, headers=me.headers)).status_code == 422
    assert_throttled(await client.post(PASSWORD_URL, json=body, headers=me.headers))
