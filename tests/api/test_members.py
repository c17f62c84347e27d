"""Members over REST: listing, role changes and removal, under the owner rules."""

from __future__ import annotations

import uuid

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import repository as auth_repository
from kithost.auth.scopes import Scope
from kithost.members import repository as members
from kithost.models import Role, Tenant, User
from tests.api.helpers import audit_actions
from tests.factories import client_token, login, make_member, make_tenant, make_user


def member_url(tenant: Tenant, user: User | uuid.UUID) -> str:
    user_id = user if isinstance(user, uuid.UUID) else user.id
    return f"/api/v1/tenants/{tenant.slug}/members/{user_id}"


async def role_of(db: AsyncSession, tenant: Tenant, user: User) -> Role | None:
    membership = await auth_repository.membership(db, tenant.id, user.id)
    if membership is None:
        return None
    await db.refresh(membership)
    return membership.role


async def test_members_are_listed_with_their_role(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant, other = await make_tenant(db, "acme"), await make_tenant(db, "other")
    viewer = await make_member(db, tenant, Role.viewer)
    await make_member(db, other, Role.viewer)
    listed = await client.get(
        "/api/v1/tenants/acme/members", headers=(await login(app, db, viewer)).headers
    )
    assert listed.status_code == 200
    rows = listed.json()
    assert [r["email"] for r in rows] == sorted(r["email"] for r in rows)
    assert {(r["user_id"], r["role"]) for r in rows} == {
        (str(viewer.id), "viewer"),
        (str((await owners(db, tenant))[0]), "owner"),
    }
    assert set(rows[0]) == {"user_id", "email", "name", "role", "created_at"}


async def owners(db: AsyncSession, tenant: Tenant) -> list[uuid.UUID]:
    return await members.lock_owner_ids(db, tenant.id)


async def test_admins_change_roles_but_only_owners_make_or_unmake_owners(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    [owner_id] = await owners(db, tenant)
    admin = await login(app, db, await make_member(db, tenant, Role.admin))
    editor = await make_member(db, tenant, Role.editor)

    changed = await client.patch(
        member_url(tenant, editor), json={"role": "viewer"}, headers=admin.headers
    )
    assert (changed.status_code, changed.json()["role"]) == (200, "viewer")
    assert changed.json()["email"] == editor.email
    assert await role_of(db, tenant, editor) is Role.viewer
    assert "member.role_changed" in await audit_actions(db, tenant.id)

    promote = await client.patch(
        member_url(tenant, editor), json={"role": "owner"}, headers=admin.headers
    )
    demote = await client.patch(
        member_url(tenant, owner_id), json={"role": "viewer"}, headers=admin.headers
    )
    for refused in (promote, demote):
        assert (refused.status_code, refused.json()["code"]) == (403, "owner_role_required")
    assert await role_of(db, tenant, editor) is Role.viewer

    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    promoted = await client.patch(
        member_url(tenant, editor), json={"role": "owner"}, headers=owner.headers
    )
    assert (promoted.status_code, promoted.json()["role"]) == (200, "owner")


async def test_api_clients_never_make_owners(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    backend = await client_token(app, db, tenant, list(Scope))
    editor = await make_member(db, tenant, Role.editor)
    refused = await client.patch(
        member_url(tenant, editor), json={"role": "owner"}, headers=backend.headers
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "owner_role_required")
    allowed = await client.patch(
        member_url(tenant, editor), json={"role": "admin"}, headers=backend.headers
    )
    assert allowed.status_code == 200


async def test_the_last_owner_is_never_demoted_or_removed(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    [first_id] = await owners(db, tenant)
    second = await make_member(db, tenant, Role.owner)
    operator = await login(app, db, await make_user(db, platform_admin=True))

    demoted = await client.patch(
        member_url(tenant, first_id), json={"role": "admin"}, headers=operator.headers
    )
    assert demoted.status_code == 200
    for attempt in (
        client.patch(member_url(tenant, second), json={"role": "admin"}, headers=operator.headers),
        client.delete(member_url(tenant, second), headers=operator.headers),
    ):
        response = await attempt
        assert (response.status_code, response.json()["code"]) == (409, "last_owner")
    assert await role_of(db, tenant, second) is Role.owner
    same = await client.patch(
        member_url(tenant, second), json={"role": "owner"}, headers=operator.headers
    )
    assert same.status_code == 200


async def test_members_are_removed_by_those_who_may(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    [owner_id] = await owners(db, tenant)
    admin = await login(app, db, await make_member(db, tenant, Role.admin))
    editor = await make_member(db, tenant, Role.editor)

    protected = await client.delete(member_url(tenant, owner_id), headers=admin.headers)
    assert (protected.status_code, protected.json()["code"]) == (403, "owner_role_required")
    removed = await client.delete(member_url(tenant, editor), headers=admin.headers)
    assert removed.status_code == 204
    assert await role_of(db, tenant, editor) is None
    assert "member.removed" in await audit_actions(db, tenant.id)
    again = await client.delete(member_url(tenant, editor), headers=admin.headers)
    assert (again.status_code, again.json()["code"]) == (404, "member_not_found")


async def test_a_user_outside_the_tenant_is_not_found(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant, other = await make_tenant(db, "acme"), await make_tenant(db, "other")
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    outsider = await make_member(db, other, Role.viewer)
    for user in (outsider.id, uuid.uuid4()):
        patched = await client.patch(
            member_url(tenant, user), json={"role": "viewer"}, headers=owner.headers
        )
        deleted = await client.delete(member_url(tenant, user), headers=owner.headers)
        for response in (patched, deleted):
            assert (response.status_code, response.json()["code"]) == (404, "member_not_found")
    assert await role_of(db, other, outsider) is Role.viewer
