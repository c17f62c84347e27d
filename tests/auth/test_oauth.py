"""Kithost as an OAuth 2.0 authorization server: the client credentials grant driven by a
real OAuth client (Authlib), its tokens checked by another JOSE library (PyJWT), its errors
as RFC 6749 §5.2 spells them, its discovery documents and ``kithost keys rotate``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx2
import jwt
import pytest
from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
    AsyncOAuth2Client,
)
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import migrate
from kithost.auth.scopes import Scope
from kithost.models import AuditLogEntry, SigningKey
from kithost.models.base import utcnow
from kithost.settings import Settings
from tests.auth.helpers import GRANT, JWKS_URL, TOKEN_URL, basic, make_backend
from tests.cli import kithost, ok_json, sync_session
from tests.factories import make_tenant

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BASIC_CHALLENGE = 'Basic realm="kithost"'
# RFC 6749 §5.2: error_description keeps to these characters.
DESCRIPTION_CHARS = {chr(c) for c in range(0x20, 0x7F)} - {'"', "\\"}


def percent_encoded(text: str) -> str:
    """Every character percent-encoded: what form-urlencoding may legitimately produce."""
    return "".join(f"%{b:02X}" for b in text.encode())


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_credentials_flow_with_authlib(
    app: FastAPI,
    client: httpx2.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    widgets_url: str,
    method: str,
) -> None:
    tenant = await make_tenant(db, "acme")
    backend = await make_backend(db, tenant)
    client_id = backend.client.client_id
    async with AsyncOAuth2Client(
        client_id,
        backend.secret,
        scope="widgets:read",
        token_endpoint_auth_method=method,
        # Authlib builds on httpx2 when it is installed (it is: openai needs it).
        transport=httpx2.ASGITransport(app=app),
        base_url="http://testserver",
    ) as oauth:
        token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
        widgets = await oauth.get(widgets_url)
    assert (token["token_type"], token["scope"]) == ("Bearer", "widgets:read")
    assert token["expires_in"] == settings.access_token_ttl_seconds
    assert widgets.status_code == 200
    assert widgets.json() == {"client": client_id, "scopes": ["widgets:read"]}

    access_token: str = token["access_token"]
    keys = jwt.PyJWKSet.from_dict((await client.get(JWKS_URL)).json())
    key = keys[jwt.get_unverified_header(access_token)["kid"]]
    claims = jwt.decode(
        access_token,
        key.key,
        algorithms=["ES256"],
        audience="kithost:api",
        issuer=settings.base_url,
    )
    assert (claims["sub"], claims["tenant"], claims["scope"]) == (
        client_id,
        str(tenant.id),
        "widgets:read",
    )
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds

    await db.refresh(backend.client)
    assert backend.client.last_used_at is not None
    assert (utcnow() - backend.client.last_used_at).total_seconds() < 60


async def test_basic_credentials_are_form_urlencoded_and_scope_defaults_to_all(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    backend = await make_backend(db, await make_tenant(db, "acme"))
    response = await client.post(
        TOKEN_URL,
        data=GRANT,
        headers=basic(percent_encoded(backend.client.client_id), percent_encoded(backend.secret)),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["scope"] == "sessions:mint widgets:read"
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["scope"] == (
        "sessions:mint widgets:read"
    )
    assert (response.headers["cache-control"], response.headers["pragma"]) == (
        "no-store",
        "no-cache",
    )


async def test_token_errors_follow_rfc_6749(client: httpx2.AsyncClient, db: AsyncSession) -> None:
    tenant = await make_tenant(db, "acme")
    good = await make_backend(db, tenant)
    revoked = await make_backend(db, tenant, "revoked")
    revoked.client.revoked_at = utcnow()
    await db.flush()
    good_id = good.client.client_id
    post = {**GRANT, "client_id": good_id, "client_secret": good.secret}
    good_basic = basic(good_id, good.secret)

    def form(
        data: Mapping[str, str | list[str]], headers: dict[str, str] | None = None
    ) -> httpx2.Request:
        return client.build_request("POST", TOKEN_URL, data=data, headers=headers)

    cases: list[tuple[str, httpx2.Request, int, str]] = [
        ("wrong secret, Basic", form(GRANT, basic(good_id, "ks_wrong")), 401, "invalid_client"),
        ("wrong secret, post", form({**post, "client_secret": "ks_wrong"}), 401, "invalid_client"),
        ("unknown client", form(GRANT, basic("kc_nobody", good.secret)), 401, "invalid_client"),
        # An id holding a NUL (which PostgreSQL cannot even compare) is an unknown one.
        ("NUL in the id, Basic", form(GRANT, basic("kc_\x00", good.secret)), 401, "invalid_client"),
        ("NUL in the id, Basic, encoded", form(GRANT, basic("kc_%00", "x")), 401, "invalid_client"),
        (
            "NUL in the id, post",
            form({**post, "client_id": f"{good_id}\x00"}),
            401,
            "invalid_client",
        ),
        (
            "revoked client",
            form(GRANT, basic(revoked.client.client_id, revoked.secret)),
            401,
            "invalid_client",
        ),
        ("no client authentication", form(GRANT), 401, "invalid_client"),
        ("Bearer, not Basic", form(GRANT, {"Authorization": "Bearer x"}), 401, "invalid_client"),
        ("Basic, not base64", form(GRANT, {"Authorization": "Basic %%"}), 401, "invalid_client"),
        (
            "scope not granted",
            form({**post, "scope": "widgets:read members:write"}),
            400,
            "invalid_scope",
        ),
        ("unknown scope", form({**post, "scope": 'root "x"'}), 400, "invalid_scope"),
        (
            "unsupported grant type",
            form({**post, "grant_type": "password"}),
            400,
            "unsupported_grant_type",
        ),
        (
            "missing grant_type",
            form({k: v for k, v in post.items() if k != "grant_type"}),
            400,
            "invalid_request",
        ),
        ("empty grant_type", form({**post, "grant_type": ""}), 400, "invalid_request"),
        ("both auth methods", form(post, good_basic), 400, "invalid_request"),
        (
            "client_id contradicting Basic",
            form({**GRANT, "client_id": revoked.client.client_id}, good_basic),
            400,
            "invalid_request",
        ),
        (
            "repeated parameter",
            form({**post, "scope": ["widgets:read", "widgets:read"]}),
            400,
            "invalid_request",
        ),
        ("JSON body", client.build_request("POST", TOKEN_URL, json=post), 400, "invalid_request"),
    ]
    for label, request, status, error in cases:
        response = await client.send(request)
        body = response.json()
        assert (response.status_code, body.get("error")) == (status, error), label
        assert set(body) == {"error", "error_description"}, label
        assert set(body["error_description"]) <= DESCRIPTION_CHARS, label
        assert response.headers["content-type"] == "application/json", label
        assert response.headers["cache-control"] == "no-store", label
        challenge = BASIC_CHALLENGE if status == 401 else None
        assert response.headers.get("www-authenticate") == challenge, label

    await db.refresh(good.client)
    assert good.client.last_used_at is None
    # The same client, asked properly, gets a token: the failures above were the requests'.
    assert (await client.send(form(post))).status_code == 200


async def test_jwks_publishes_public_keys_only(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    first = await client.get(JWKS_URL)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=300"
    (key,) = first.json()["keys"]  # never empty, even before the first token
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in key
    assert (await client.get(JWKS_URL)).json() == first.json()

    backend = await make_backend(db, await make_tenant(db, "acme"))
    token = await client.post(
        TOKEN_URL, data=GRANT, headers=basic(backend.client.client_id, backend.secret)
    )
    assert jwt.get_unverified_header(token.json()["access_token"])["kid"] == key["kid"]


async def test_authorization_server_metadata(
    client: httpx2.AsyncClient, settings: Settings
) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    metadata = response.json()
    base = settings.base_url
    assert metadata == {
        "issuer": base,
        "token_endpoint": f"{base}/oauth/token",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": [s.value for s in Scope],
        "response_types_supported": [],
    }
    jwks = await client.get(httpx2.URL(metadata["jwks_uri"]).path)
    assert jwks.json()["keys"]
    token = await client.post(httpx2.URL(metadata["token_endpoint"]).path, data=GRANT)
    assert token.json()["error"] == "invalid_client"


def test_keys_rotate_command(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    migrate.upgrade(settings)
    first = ok_json(settings, "keys", "rotate")
    second = ok_json(settings, "keys", "rotate")
    assert first["published"] == first["kid"]
    assert second["kid"] != first["kid"]
    assert set(second["published"].split()) == {first["kid"], second["kid"]}
    with sync_session(settings) as session:
        keys = {k.kid: k for k in session.execute(select(SigningKey)).scalars()}
    assert set(keys) == {first["kid"], second["kid"]}
    assert keys[first["kid"]].retired_at is not None
    assert keys[second["kid"]].retired_at is None
    assert "PRIVATE KEY" not in keys[second["kid"]].private_key  # encrypted at rest

    human = kithost(settings, "keys", "rotate")
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith("kid: ")

    withdrawing = ok_json(settings, "keys", "rotate", "--withdraw-previous")
    with sync_session(settings) as session:
        entries = session.execute(
            select(AuditLogEntry)
            .where(AuditLogEntry.action == "signing_key.rotated")
            .order_by(AuditLogEntry.created_at)
        ).scalars()
        audited = [(e.actor_type, e.tenant_id, e.target_id, e.data) for e in entries]
    assert audited[:2] == [
        ("cli", None, first["kid"], {}),
        ("cli", None, second["kid"], {}),
    ]
    assert len(audited) == 4
    assert audited[3][2] == withdrawing["kid"]
    assert set(audited[3][3]["withdrawn"]) == {first["kid"], second["kid"], audited[2][2]}
    assert "PRIVATE KEY" not in str(audited)
