"""The tenant-access dependency: 401 without credentials, 404 across tenants, 403 without
the scope, CSRF on cookie writes — for users and API clients alike."""

from __future__ import annotations

import base64

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.dependencies import MembersWrite
from kithost.auth.scopes import Scope
from kithost.models import Role
from tests.factories import client_token, login, make_member, make_tenant, make_user


@pytest.fixture
def probe(app: FastAPI) -> FastAPI:
    @app.post("/t/tenants/{tenant}/probe")
    async def probe_route(access: MembersWrite) -> dict[str, str | None]:
        return {"tenant": access.tenant.slug, "role": access.role}

    return app


@pytest.mark.usefixtures("probe")
async def test_users_by_role(client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession) -> None:
    acme, other = await make_tenant(db, "acme"), await make_tenant(db, "other")
    url = "/t/tenants/acme/probe"
    assert (await client.post(url)).json()["code"] == "unauthenticated"

    admin = await login(app, db, await make_member(db, acme, Role.admin))
    ok = await client.post(url, headers=admin.headers)
    assert (ok.status_code, ok.json()) == (200, {"tenant": "acme", "role": "admin"})

    no_csrf = await client.post(url, headers={"Cookie": admin.headers["Cookie"]})
    assert (no_csrf.status_code, no_csrf.json()["code"]) == (403, "csrf_failed")

    viewer = await login(app, db, await make_member(db, acme, Role.viewer))
    denied = await client.post(url, headers=viewer.headers)
    assert (denied.status_code, denied.json()["code"]) == (403, "insufficient_scope")

    stranger = await login(app, db, await make_member(db, other, Role.owner))
    hidden = await client.post(url, headers=stranger.headers)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "tenant_not_found")
    missing = await client.post("/t/tenants/nope/probe", headers=admin.headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "tenant_not_found")

    operator = await login(app, db, await make_user(db, platform_admin=True))
    assert (await client.post(url, headers=operator.headers)).json() == {
        "tenant": "acme",
        "role": None,
    }


@pytest.mark.usefixtures("probe")
async def test_clients_by_scope_and_tenant(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    acme, other = await make_tenant(db, "acme"), await make_tenant(db, "other")
    url = "/t/tenants/acme/probe"
    writer = await client_token(app, db, acme, [Scope.members_write])
    assert (await client.post(url, headers=writer.headers)).status_code == 200
    reader = await client_token(app, db, acme, [Scope.members_read])
    assert (await client.post(url, headers=reader.headers)).status_code == 403
    outsider = await client_token(app, db, other, [Scope.members_write])
    assert (await client.post(url, headers=outsider.headers)).status_code == 404
    bad = await client.post(url, headers={"Authorization": "Bearer not-a-jwt"})
    assert (bad.status_code, bad.json()["code"]) == (401, "invalid_token")
    assert bad.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # A header nested deeper than Python's json recursion limit: refused, not a 500.
    deep = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode().rstrip("=")
    nested = await client.post(url, headers={"Authorization": f"Bearer {deep}.e30.sig"})
    assert (nested.status_code, nested.json()["code"]) == (401, "invalid_token")
