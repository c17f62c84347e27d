"""Tenants over REST: created by platform admins for an owner, listed, read and renamed."""

from __future__ import annotations

import uuid

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import repository as auth_repository
from kithost.auth.scopes import Scope
from kithost.models import Membership, Role
from kithost.users import repository as users
from tests.api.helpers import audit_actions, token_of
from tests.factories import PASSWORD, client_token, login, make_member, make_tenant, make_user

TENANTS = "/api/v1/tenants"


async def test_a_new_owner_gets_in_by_the_invitation_returned_once(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    operator = await login(app, db, await make_user(db, platform_admin=True))
    body = {"slug": "acme", "name": " Acme Inc ", "owner_email": "Boss@Acme.example"}
    created = await client.post(TENANTS, json=body, headers=operator.headers)
    assert created.status_code == 201
    new = created.json()
    assert (new["tenant"]["slug"], new["tenant"]["name"]) == ("acme", "Acme Inc")
    invitation = new["owner_invitation"]
    assert (invitation["invitation"]["email"], invitation["invitation"]["role"]) == (
        "boss@acme.example",
        "owner",
    )
    base_url = app.state.settings.base_url
    assert invitation["accept_url"].startswith(f"{base_url}/admin/invite#token=")
    assert "password" not in created.text
    assert await users.get_by_email(db, "boss@acme.example") is None

    accepted = await client.post(
        "/api/v1/invitations/accept",
        json={"token": token_of(invitation["accept_url"]), "password": PASSWORD, "name": "Boss"},
    )
    assert accepted.status_code == 200
    assert (accepted.json()["tenant"]["slug"], accepted.json()["role"]) == ("acme", "owner")
    owner = await users.get_by_email(db, "boss@acme.example")
    assert owner is not None
    assert owner.name == "Boss"
    seen = await client.get(f"{TENANTS}/acme", headers=(await login(app, db, owner)).headers)
    assert (seen.status_code, seen.json()["id"]) == (200, new["tenant"]["id"])
    assert "tenant.created" in await audit_actions(db, uuid.UUID(new["tenant"]["id"]))


async def test_an_existing_user_owns_the_new_tenant_at_once(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    operator = await login(app, db, await make_user(db, platform_admin=True))
    owner = await make_user(db)
    body = {"slug": "acme", "name": "Acme", "owner_email": owner.email.upper()}
    created = await client.post(TENANTS, json=body, headers=operator.headers)
    assert (created.status_code, created.json()["owner_invitation"]) == (201, None)
    tenant_id = uuid.UUID(created.json()["tenant"]["id"])
    membership = await auth_repository.membership(db, tenant_id, owner.id)
    assert membership is not None
    assert membership.role is Role.owner


async def test_only_platform_admins_create_valid_unique_tenants(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    await make_tenant(db, "taken")
    body = {"slug": "acme", "name": "Acme", "owner_email": "boss@acme.example"}
    assert (await client.post(TENANTS, json=body)).status_code == 401
    user = await login(app, db, await make_user(db))
    refused = await client.post(TENANTS, json=body, headers=user.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "not_platform_admin")

    operator = await login(app, db, await make_user(db, platform_admin=True))
    for change, status, field in [
        ({"slug": "taken"}, 409, None),
        ({"slug": "Not A Slug"}, 422, "slug"),
        ({"name": "  "}, 422, "name"),
        ({"owner_email": "nobody"}, 422, "owner_email"),
    ]:
        response = await client.post(TENANTS, json=body | change, headers=operator.headers)
        assert response.status_code == status, change
        if field is not None:
            assert [e["field"] for e in response.json()["errors"]] == [field]
    assert (await client.post(TENANTS, json=body, headers=operator.headers)).status_code == 201


async def test_users_list_their_tenants_and_platform_admins_all(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    beta, alpha, gamma = [await make_tenant(db, slug) for slug in ("beta", "alpha", "gamma")]
    user = await make_member(db, beta, Role.viewer)
    db.add(Membership(tenant_id=alpha.id, user_id=user.id, role=Role.editor))
    await db.flush()
    mine = await client.get(TENANTS, headers=(await login(app, db, user)).headers)
    assert [t["slug"] for t in mine.json()] == ["alpha", "beta"]

    operator = (await login(app, db, await make_user(db, platform_admin=True))).headers
    every = await client.get(TENANTS, headers=operator)
    assert [t["slug"] for t in every.json()] == ["alpha", "beta", "gamma"]
    page = await client.get(TENANTS, params={"after": "alpha", "limit": 1}, headers=operator)
    assert [t["slug"] for t in page.json()] == ["beta"]
    assert {t["id"] for t in every.json()} == {str(t.id) for t in (alpha, beta, gamma)}

    backend = await client_token(app, db, beta, list(Scope))
    assert (await client.get(TENANTS, headers=backend.headers)).status_code == 401
    assert (await client.get(TENANTS, params={"limit": 0}, headers=operator)).status_code == 422


async def test_tenants_are_found_by_text_their_slug_or_name_holds(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    north, south, west = [await make_tenant(db, slug) for slug in ("north-1", "south-1", "west")]
    south.name = "Southern Northwind"
    user = await make_member(db, west, Role.viewer)
    db.add(Membership(tenant_id=north.id, user_id=user.id, role=Role.editor))
    await db.flush()
    operator = (await login(app, db, await make_user(db, platform_admin=True))).headers
    member = (await login(app, db, user)).headers

    async def found(headers: dict[str, str], q: str, **params: str) -> list[str]:
        listed = await client.get(TENANTS, params={"q": q, **params}, headers=headers)
        assert listed.status_code == 200, listed.text
        return [t["slug"] for t in listed.json()]

    assert await found(operator, "NORTH") == ["north-1", "south-1"]  # slug, name, any case
    assert await found(operator, "north", after="north-1") == ["south-1"]
    assert await found(operator, "-1") == ["north-1", "south-1"]
    assert await found(operator, "h_1") == []  # the text as it is: not a LIKE pattern
    assert await found(member, "north") == ["north-1"]  # only the user's own
    for q in ("", "x" * 101, "a\x00b"):
        refused = await client.get(TENANTS, params={"q": q}, headers=operator)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["q"]


async def test_any_member_reads_the_tenant_and_admins_rename_it(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    viewer = await login(app, db, await make_member(db, tenant, Role.viewer))
    read = await client.get(f"{TENANTS}/acme", headers=viewer.headers)
    assert read.json() == {
        "id": str(tenant.id),
        "slug": "acme",
        "name": "Acme",
        "created_at": read.json()["created_at"],
    }

    editor = await login(app, db, await make_member(db, tenant, Role.editor))
    denied = await client.patch(f"{TENANTS}/acme", json={"name": "X"}, headers=editor.headers)
    assert (denied.status_code, denied.json()["code"]) == (403, "insufficient_scope")

    admin = await login(app, db, await make_member(db, tenant, Role.admin))
    renamed = await client.patch(
        f"{TENANTS}/acme", json={"name": "  Acme Corp "}, headers=admin.headers
    )
    assert (renamed.status_code, renamed.json()["name"]) == (200, "Acme Corp")
    await db.refresh(tenant)
    assert tenant.name == "Acme Corp"
    assert "tenant.renamed" in await audit_actions(db, tenant.id)
    empty = await client.patch(f"{TENANTS}/acme", json={"name": " "}, headers=admin.headers)
    unknown = await client.patch(f"{TENANTS}/acme", json={"slug": "x"}, headers=admin.headers)
    assert (empty.status_code, unknown.status_code) == (422, 422)
