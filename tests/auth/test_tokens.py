"""Access tokens at a protected route: accepted only when Kithost signed them with a key it
still publishes, for its own API, for a client that is not revoked — and never logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import signing
from kithost.auth.oauth import API_AUDIENCE, issue_access_token
from kithost.auth.scopes import Scope
from kithost.kit.crypto import SecretBox
from kithost.models import ApiClient, SigningKey
from kithost.models.base import utcnow
from kithost.settings import Settings
from tests.auth.helpers import GRANT, JWKS_URL, TOKEN_URL, basic, make_backend
from tests.factories import make_tenant


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_invalid_token(response: httpx2.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_token"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def published_kids(client: httpx2.AsyncClient) -> set[str]:
    return {key["kid"] for key in (await client.get(JWKS_URL)).json()["keys"]}


async def test_tokens_outlive_a_rotation_until_their_key_is_unpublished(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession, widgets_url: str
) -> None:
    box: SecretBox = app.state.secret_box
    backend = (await make_backend(db, await make_tenant(db, "acme"))).client
    old_key = await signing.current_key(db, box)
    before = await issue_access_token(db, app.state.settings, box, backend, [Scope.widgets_read])

    new_key = await signing.rotate(db, box)
    after = await issue_access_token(db, app.state.settings, box, backend, [Scope.widgets_read])
    assert jwt.get_unverified_header(before)["kid"] == old_key.kid
    assert jwt.get_unverified_header(after)["kid"] == new_key.kid != old_key.kid
    assert await published_kids(client) == {old_key.kid, new_key.kid}
    for token in (before, after):
        assert (await client.get(widgets_url, headers=bearer(token))).status_code == 200

    # A leaked key is withdrawn at once (other processes: within REFRESH_SECONDS).
    assert await signing.withdraw_retired(db) == [old_key.kid]
    assert await published_kids(client) == {new_key.kid}
    assert_invalid_token(await client.get(widgets_url, headers=bearer(before)))
    assert (await client.get(widgets_url, headers=bearer(after))).status_code == 200


async def test_a_process_meets_a_rotation_through_its_key_ring(
    app: FastAPI, db: AsyncSession
) -> None:
    """Another process (its own ring) signs with the old key until its refresh, and takes
    the new key as soon as a token signed with it arrives (no faster than once a second)."""
    box: SecretBox = app.state.secret_box
    clock = [0.0]
    other = signing.KeyRing(clock=lambda: clock[0])
    old = await signing.current_key(db, box)
    assert (await other.signer(db, box))[0] == old.kid
    new = await signing.rotate(db, box)

    clock[0] = signing.UNKNOWN_KID_RELOAD_SECONDS / 2
    assert await other.public_key(db, new.kid) is None
    assert (await other.signer(db, box))[0] == old.kid
    clock[0] = signing.UNKNOWN_KID_RELOAD_SECONDS * 2
    assert await other.public_key(db, new.kid) is not None
    assert (await other.signer(db, box))[0] == new.kid
    assert await other.public_key(db, old.kid) is not None  # retired, still published

    quiet = signing.KeyRing(clock=lambda: clock[0])
    newer = await signing.rotate(db, box)
    assert (await quiet.signer(db, box))[0] == newer.kid
    await signing.rotate(db, box)
    clock[0] += signing.REFRESH_SECONDS / 2
    assert (await quiet.signer(db, box))[0] == newer.kid
    clock[0] += signing.REFRESH_SECONDS
    assert (await quiet.signer(db, box))[0] != newer.kid


async def test_revoking_a_client_stops_its_tokens_at_once(
    client: httpx2.AsyncClient, db: AsyncSession, widgets_url: str
) -> None:
    backend = await make_backend(db, await make_tenant(db, "acme"))
    issued = await client.post(
        TOKEN_URL, data=GRANT, headers=basic(backend.client.client_id, backend.secret)
    )
    token = issued.json()["access_token"]
    assert (await client.get(widgets_url, headers=bearer(token))).status_code == 200

    backend.client.revoked_at = utcnow()
    await db.flush()
    assert jwt.decode(token, options={"verify_signature": False})["exp"] > time.time() + 60
    assert_invalid_token(await client.get(widgets_url, headers=bearer(token)))


@dataclass(frozen=True)
class Forger:
    """Makes tokens for an API client of tenant ``acme``, good and bad."""

    db: AsyncSession
    box: SecretBox
    settings: Settings
    client: ApiClient

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.settings.base_url,
            "aud": API_AUDIENCE,
            "sub": self.client.client_id,
            "tenant": str(self.client.tenant_id),
            "scope": "widgets:read",
            "iat": now,
            "exp": now + 300,
            "jti": "forged",
            **changes,
        }

    async def kithost_key(self) -> SigningKey:
        return await signing.current_key(self.db, self.box)

    async def signed_by_kithost(self, ttl_seconds: int = 300, **changes: Any) -> str:
        return await signing.sign(self.db, self.box, self.claims(**changes), ttl_seconds)

    def signed_with_pyjwt(self, private_key: Any, kid: str) -> str:
        return jwt.encode(self.claims(), private_key, algorithm="ES256", headers={"kid": kid})

    async def kithost_private_pem(self) -> str:
        return self.box.decrypt((await self.kithost_key()).private_key)

    async def kithost_public_pem(self) -> bytes:
        jwk = jwt.PyJWK((await self.kithost_key()).public_jwk)
        return bytes(
            jwk.key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A JWS in compact form, signed by hand (for what JOSE libraries refuse to make)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


async def _truncated(forger: Forger) -> str:
    return ".".join((await forger.signed_by_kithost()).split(".")[:2])


async def _scope_escalated(forger: Forger) -> str:
    header, _, signature = (await forger.signed_by_kithost()).split(".")
    claims = forger.claims(scope="widgets:read widgets:write members:write")
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


async def _expired(forger: Forger) -> str:
    return await forger.signed_by_kithost(ttl_seconds=-60)


async def _unknown_key(forger: Forger) -> str:
    return forger.signed_with_pyjwt(ec.generate_private_key(ec.SECP256R1()), "made-up")


async def _unknown_key_posing_as_kithost(forger: Forger) -> str:
    kid = (await forger.kithost_key()).kid
    return forger.signed_with_pyjwt(ec.generate_private_key(ec.SECP256R1()), kid)


async def _alg_none(forger: Forger) -> str:
    return compact({"alg": "none", "typ": "JWT"}, forger.claims(), lambda _: b"")


async def _hs256_with_public_key(forger: Forger) -> str:
    secret = await forger.kithost_public_pem()
    kid = (await forger.kithost_key()).kid
    return compact(
        {"alg": "HS256", "typ": "JWT", "kid": kid},
        forger.claims(),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )


async def _wrong_audience(forger: Forger) -> str:
    return await forger.signed_by_kithost(aud="chatkit:widget")


async def _wrong_issuer(forger: Forger) -> str:
    return await forger.signed_by_kithost(iss="https://kithost.evil.example")


BAD_TOKENS: dict[str, Callable[[Forger], Awaitable[str]]] = {
    "malformed": _truncated,
    "scope escalated": _scope_escalated,
    "expired": _expired,
    "unknown key": _unknown_key,
    "unknown key with Kithost's kid": _unknown_key_posing_as_kithost,
    "alg none": _alg_none,
    "HS256 with the public key": _hs256_with_public_key,
    "wrong audience": _wrong_audience,
    "wrong issuer": _wrong_issuer,
}


@pytest.fixture
async def forger(app: FastAPI, db: AsyncSession) -> Forger:
    backend = await make_backend(db, await make_tenant(db, "acme"))
    return Forger(db, app.state.secret_box, app.state.settings, backend.client)


@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_bad_tokens_are_refused(
    client: httpx2.AsyncClient,
    forger: Forger,
    widgets_url: str,
    make_token: Callable[[Forger], Awaitable[str]],
) -> None:
    token = await make_token(forger)
    assert_invalid_token(await client.get(widgets_url, headers=bearer(token)))


async def test_forged_tokens_pass_with_the_real_key(
    client: httpx2.AsyncClient, forger: Forger, widgets_url: str
) -> None:
    """The bad tokens above fail for the one flaw each has, not for their claims or tools."""
    kid = (await forger.kithost_key()).kid
    good = [
        await forger.signed_by_kithost(),
        forger.signed_with_pyjwt(await forger.kithost_private_pem(), kid),
    ]
    for token in good:
        response = await client.get(widgets_url, headers=bearer(token))
        assert response.status_code == 200, response.text


async def test_secrets_and_tokens_never_reach_the_logs(
    caplog: pytest.LogCaptureFixture,
    client: httpx2.AsyncClient,
    db: AsyncSession,
    widgets_url: str,
) -> None:
    backend = await make_backend(db, await make_tenant(db, "acme"))
    client_id, secret = backend.client.client_id, backend.secret
    wrong_secret = secret[:-4] + "XXXX"
    # Kithost's own logs at every level; libraries' at the level production runs.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="kithost")

    issued = await client.post(TOKEN_URL, data=GRANT, headers=basic(client_id, secret))
    token = issued.json()["access_token"]
    refused = await client.post(TOKEN_URL, data=GRANT, headers=basic(client_id, wrong_secret))
    assert refused.status_code == 401
    # A client that mixed up its id and secret, so sends the secret as its id.
    swapped = {**GRANT, "client_id": secret, "client_secret": client_id}
    assert (await client.post(TOKEN_URL, data=swapped)).status_code == 401
    assert (await client.get(widgets_url, headers=bearer(token))).status_code == 200
    assert_invalid_token(await client.get(widgets_url, headers=bearer(token + "x")))
    backend.client.revoked_at = utcnow()
    await db.flush()
    assert_invalid_token(await client.get(widgets_url, headers=bearer(token)))

    events = [
        (r.msg["event"], r.msg.get("client_id")) for r in caplog.records if isinstance(r.msg, dict)
    ]
    assert ("oauth_token_issued", client_id) in events
    assert ("oauth_client_authentication_failed", client_id) in events
    assert ("oauth_client_authentication_failed", None) in events
    logged = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    for leak in (secret, wrong_secret, token, token.split(".")[2]):
        assert leak not in logged
