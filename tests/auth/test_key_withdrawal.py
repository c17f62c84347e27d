"""``kithost keys rotate --withdraw-previous`` (a leaked key) through the HTTP API: the
withdrawn key's tokens are refused on every route (the chat route, which keeps verified
tokens, the REST API, the session refresh), and every process signs with the new key, at
once where the withdrawal ran and within ``signing.REFRESH_SECONDS`` everywhere else — and
no token signed with the key, a forger's included, lives longer than a minted one would."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

import kithost.app
from kithost import rls
from kithost.auth import signing
from kithost.db import Sessionmaker, create_sessionmaker, session_scope
from kithost.sessions import tokens
from kithost.settings import Settings
from kithost.worker.enqueue import PendingTasks
from tests.auth.helpers import GRANT, JWKS_URL, TOKEN_URL, basic, make_backend
from tests.conftest import create_test_app
from tests.sessions.helpers import DEVICE, SHOP, Published, mint, publish


class Clock:
    """The app's key ring's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(
    settings: Settings, connection: AsyncConnection, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> FastAPI:
    """The test's app, its key ring on :func:`clock`."""
    monkeypatch.setattr(kithost.app, "KeyRing", lambda: signing.KeyRing(clock=clock))
    return create_test_app(settings, connection)


def another_process(app: FastAPI) -> Sessionmaker:
    """Sessions with a key ring of their own, as the ``kithost keys rotate`` command has:
    what they change reaches the app's ring only through the database."""
    app_sessions: Sessionmaker = app.state.sessionmaker
    sessionmaker = create_sessionmaker(
        app_sessions.kw["bind"],
        PendingTasks(app.state.celery),
        {signing.KEY_RING: signing.KeyRing()},
    )
    return rls.bypassing_sessions(sessionmaker, rls.Bypass.platform)


@dataclass
class Caller:
    """A visitor's session and an API client's access token, on one tenant's widget."""

    client: httpx2.AsyncClient
    target: Published
    client_id: str
    secret: str

    async def session_token(self) -> str:
        response = await mint(self.client, self.target, {"device_id": DEVICE})
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    async def access_token(self) -> str:
        response = await self.client.post(
            TOKEN_URL, data=GRANT, headers=basic(self.client_id, self.secret)
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def chat(self, token: str) -> httpx2.Response:
        return await self.client.post(
            f"/v1/chatkit/{self.target.widget.public_key}",
            json={"type": "threads.list", "params": {}},
            headers={"Authorization": f"Bearer {token}", "Origin": SHOP},
        )

    async def refresh(self, token: str) -> httpx2.Response:
        return await mint(self.client, self.target, {"current": token})

    async def widgets(self, token: str) -> httpx2.Response:
        return await self.client.get(
            f"/api/v1/tenants/{self.target.tenant.slug}/widgets",
            headers={"Authorization": f"Bearer {token}"},
        )


@pytest.fixture
async def caller(client: httpx2.AsyncClient, db: AsyncSession) -> Caller:
    target = await publish(db)
    backend = await make_backend(db, target.tenant)
    return Caller(client, target, backend.client.client_id, backend.secret)


def kid(token: str) -> str:
    found: str = pyjwt.get_unverified_header(token)["kid"]
    return found


def assert_refused(response: httpx2.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_a_withdrawal_reaches_every_process_and_every_route(
    app: FastAPI, caller: Caller, clock: Clock
) -> None:
    session_token, access_token = await caller.session_token(), await caller.access_token()
    assert kid(session_token) == kid(access_token)
    assert (await caller.chat(session_token)).status_code == 200  # verified, kept
    assert (await caller.widgets(access_token)).status_code == 200

    async with session_scope(another_process(app)) as session:
        new = await signing.rotate(session, app.state.secret_box)
        assert await signing.withdraw_retired(session) == [kid(session_token)]
    jwks = (await caller.client.get(JWKS_URL)).json()
    assert [key["kid"] for key in jwks["keys"]] == [new.kid]

    # What README promises: no process trusts the withdrawn key 5 seconds on.
    assert signing.REFRESH_SECONDS <= 5
    clock.now += signing.REFRESH_SECONDS + 0.1
    assert_refused(await caller.chat(session_token), 401, "invalid_session_token")
    assert_refused(await caller.refresh(session_token), 401, "invalid_session_token")
    assert_refused(await caller.widgets(access_token), 401, "invalid_token")

    renewed, reissued = await caller.session_token(), await caller.access_token()
    assert kid(renewed) == kid(reissued) == new.kid
    assert (await caller.chat(renewed)).status_code == 200
    assert (await caller.refresh(renewed)).status_code == 200
    assert (await caller.widgets(reissued)).status_code == 200


async def test_the_withdrawing_process_refuses_kept_tokens_at_once(
    app: FastAPI, caller: Caller, db: AsyncSession
) -> None:
    """The chat route keeps a verified token, but not past its key's withdrawal."""
    session_token = await caller.session_token()
    assert (await caller.chat(session_token)).status_code == 200
    assert (await caller.chat(session_token)).status_code == 200  # from what it kept

    await signing.rotate(db, app.state.secret_box)
    assert (await caller.chat(session_token)).status_code == 200  # retired, still published
    await signing.withdraw_retired(db)
    assert_refused(await caller.chat(session_token), 401, "invalid_session_token")
    assert (await caller.chat(await caller.session_token())).status_code == 200


def stretched(claims: dict[str, Any], now: int) -> dict[str, Any]:
    return {**claims, "exp": now + 30 * 86400}


def started_later(claims: dict[str, Any], now: int) -> dict[str, Any]:
    return {**claims, "sst": now + 30 * 86400}


def outliving_the_identity(claims: dict[str, Any], now: int) -> dict[str, Any]:
    return {**claims, "sub": "u:42", "idexp": now + 60}


def undated(claims: dict[str, Any], _now: int) -> dict[str, Any]:
    return {name: value for name, value in claims.items() if name != "iat"}


FORGED = {
    "living 30 days": stretched,
    "a session started in the future": started_later,
    "outliving its identity token": outliving_the_identity,
    "without iat": undated,
}


@pytest.mark.parametrize("forge", FORGED.values(), ids=FORGED.keys())
async def test_tokens_signed_with_the_key_live_no_longer_than_minted_ones(
    app: FastAPI, caller: Caller, db: AsyncSession, forge: Any
) -> None:
    """Someone holding the signing key (it leaked) signs a token the mint never would: the
    chat route would keep it until its ``exp``, past the key's withdrawal."""
    honest = await caller.session_token()
    claims = pyjwt.decode(honest, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == app.state.settings.session_token_ttl_seconds
    key = await signing.current_key(db, app.state.secret_box)
    private = ECKey.import_key(app.state.secret_box.decrypt(key.private_key), {"kid": key.kid})
    forged = jwt.encode(
        {"alg": signing.ALGORITHM, "kid": key.kid}, forge(claims, int(time.time())), private
    )
    resigned = jwt.encode({"alg": signing.ALGORITHM, "kid": key.kid}, claims, private)

    assert (await caller.chat(resigned)).status_code == 200  # the same claims pass
    assert_refused(await caller.chat(forged), 401, "invalid_session_token")
    assert_refused(await caller.refresh(forged), 401, "invalid_session_token")
    assert tokens.audience(caller.target.widget.public_key) == claims["aud"]
