"""Probes of a tenant's access control through the HTTP API, as a customer and as an
attacker would try it: raising one's own role, taking the last owner, credentials that
outlive what vouched for them, invitations used by someone else, look-alike emails, odd
OAuth requests and bad input (always a 4xx problem naming the field, never a 500)."""

from __future__ import annotations

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.clients.service import create_client
from kithost.invitations.service import create_invitation
from kithost.models import Role, Tenant
from tests.api.helpers import audit_actions, token_of
from tests.auth.helpers import GRANT, TOKEN_URL, basic
from tests.factories import (
    Credentials,
    client_token,
    login,
    make_member,
    make_tenant,
    make_user,
)

API = "/api/v1/tenants"
ACCEPT = "/api/v1/invitations/accept"


@pytest.fixture
async def acme(db: AsyncSession) -> Tenant:
    return await make_tenant(db, "acme")


async def signed_in(app: FastAPI, db: AsyncSession, tenant: Tenant, role: Role) -> Credentials:
    return await login(app, db, await make_member(db, tenant, role))


async def test_nobody_raises_their_own_role(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    for role, wanted, code in [
        (Role.admin, "owner", "owner_role_required"),
        (Role.editor, "admin", "insufficient_scope"),
        (Role.viewer, "editor", "insufficient_scope"),
    ]:
        user = await make_member(db, acme, role)
        headers = (await login(app, db, user)).headers
        answer = await client.patch(
            f"{API}/acme/members/{user.id}", json={"role": wanted}, headers=headers
        )
        assert (answer.status_code, answer.json()["code"]) == (403, code), role
        invited = await client.post(
            f"{API}/acme/invitations",
            json={"email": user.email.upper(), "role": wanted},
            headers=headers,
        )
        assert (invited.status_code, invited.json()["code"]) == (403, code), role


async def test_a_removed_member_and_a_revoked_client_are_locked_out(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    owner = await signed_in(app, db, acme, Role.owner)
    admin_user = await make_member(db, acme, Role.admin)
    admin = await login(app, db, admin_user)
    removed = await client.delete(f"{API}/acme/members/{admin_user.id}", headers=owner.headers)
    assert removed.status_code == 204
    for method, path in [("GET", "members"), ("POST", "invitations"), ("GET", "clients")]:
        body = {"email": "x@example.test", "role": "viewer"} if method == "POST" else None
        answer = await client.request(
            method, f"{API}/acme/{path}", json=body, headers=admin.headers
        )
        assert (answer.status_code, answer.json()["code"]) == (404, "tenant_not_found"), path

    new = await client.post(
        f"{API}/acme/clients",
        json={"name": "backend", "scopes": ["members:read"]},
        headers=owner.headers,
    )
    made = new.json()
    got = await client.post(
        TOKEN_URL, data=GRANT, headers=basic(made["client"]["client_id"], made["client_secret"])
    )
    bearer = {"Authorization": f"Bearer {got.json()['access_token']}"}
    assert (await client.get(f"{API}/acme/members", headers=bearer)).status_code == 200
    revoked = await client.delete(
        f"{API}/acme/clients/{made['client']['id']}", headers=owner.headers
    )
    assert revoked.status_code == 204
    answer = await client.get(f"{API}/acme/members", headers=bearer)
    assert (answer.status_code, answer.json()["code"]) == (401, "invalid_token")
    again = await client.post(
        TOKEN_URL, data=GRANT, headers=basic(made["client"]["client_id"], made["client_secret"])
    )
    assert (again.status_code, again.json()["error"]) == (401, "invalid_client")
    assert {"member.removed", "client.created", "client.revoked"} <= set(
        await audit_actions(db, acme.id)
    )


async def test_a_client_of_one_tenant_never_reaches_another(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    other = await make_tenant(db, "other")
    theirs = await make_member(db, other, Role.viewer)
    their_client = await create_client(db, CLI, other, name="b", scopes=[Scope.members_read])
    new = await create_invitation(
        db,
        app.state.settings,
        CLI,
        other,
        email="z@example.test",
        role=Role.viewer,
        invited_by=None,
    )
    ours = await client_token(app, db, acme, list(Scope))
    for method, path in [
        ("PATCH", f"{API}/other/members/{theirs.id}"),
        ("PATCH", f"{API}/acme/members/{theirs.id}"),
        ("DELETE", f"{API}/acme/members/{theirs.id}"),
        ("DELETE", f"{API}/acme/clients/{their_client.client.id}"),
        ("DELETE", f"{API}/acme/invitations/{new.invitation.id}"),
    ]:
        answer = await client.request(
            method,
            path,
            json={"role": "viewer"} if method == "PATCH" else None,
            headers=ours.headers,
        )
        assert answer.status_code == 404, (method, path)
        assert answer.headers["content-type"] == "application/problem+json"


async def test_an_invitation_to_a_look_alike_email_is_the_accounts(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    user = await make_user(db)
    local, _, domain = user.email.partition("@")
    admin = await signed_in(app, db, acme, Role.admin)
    spelled = f" {local.upper()}@{domain.upper()} ".replace("U", "\uff35")
    invited = await client.post(
        f"{API}/acme/invitations", json={"email": spelled, "role": "editor"}, headers=admin.headers
    )
    assert invited.status_code == 201
    assert invited.json()["invitation"]["email"] == user.email
    token = token_of(invited.json()["accept_url"])
    # Not signed in: the account exists, so nobody makes a second one of its email.
    squatter = await client.post(ACCEPT, json={"token": token, "password": "another password 1"})
    assert (squatter.status_code, squatter.json()["code"]) == (401, "unauthenticated")
    stranger = await login(app, db, await make_user(db))
    taken = await client.post(ACCEPT, json={"token": token}, headers=stranger.headers)
    assert (taken.status_code, taken.json()["code"]) == (403, "invitation_email_mismatch")
    accepted = await client.post(
        ACCEPT, json={"token": token}, headers=(await login(app, db, user)).headers
    )
    assert (accepted.status_code, accepted.json()["role"]) == (200, "editor")
    reused = await client.post(
        ACCEPT, json={"token": token}, headers=(await login(app, db, user)).headers
    )
    assert (reused.status_code, reused.json()["code"]) == (410, "invitation_used")


@pytest.mark.parametrize(
    ("scope", "error"),
    [
        ("members:read members:read", None),
        ("  members:read   ", None),
        ("members:read\u00a0members:read", "invalid_scope"),
        ("members:read\tmembers:read", "invalid_scope"),
        ("members:read widgets:read", "invalid_scope"),
        ("members:read unknown:scope", "invalid_scope"),
        ("MEMBERS:READ", "invalid_scope"),
        (" ", "invalid_scope"),
    ],
)
async def test_odd_scope_strings(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Tenant, scope: str, error: str | None
) -> None:
    new = await create_client(db, CLI, acme, name="b", scopes=[Scope.members_read])
    answer = await client.post(
        TOKEN_URL, data={**GRANT, "scope": scope}, headers=basic(new.client.client_id, new.secret)
    )
    if error is None:
        assert (answer.status_code, answer.json()["scope"]) == (200, "members:read")
    else:
        assert (answer.status_code, answer.json()["error"]) == (400, error)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "members/{me}", {"role": "superuser"}, "role"),
        ("PATCH", "members/{me}", {"role": None}, "role"),
        ("PATCH", "members/{me}", {}, "role"),
        ("PATCH", "members/not-a-uuid", {"role": "viewer"}, "user_id"),
        ("DELETE", "members/not-a-uuid", None, "user_id"),
        ("POST", "invitations", {"email": "no-at-sign", "role": "viewer"}, "email"),
        ("POST", "invitations", {"email": "a@example.test.", "role": "viewer"}, "email"),
        ("POST", "invitations", {"email": "a\u200b@example.test", "role": "viewer"}, "email"),
        ("POST", "invitations", {"email": "a\x00@example.test", "role": "viewer"}, "email"),
        ("POST", "invitations", {"email": "a@example.test", "role": "root"}, "role"),
        ("POST", "invitations", {"email": "a" * 400 + "@example.test", "role": "viewer"}, "email"),
        ("DELETE", "invitations/not-a-uuid", None, "id"),
        ("POST", "clients", {"name": "b", "scopes": ["root"]}, "scopes.0"),
        ("POST", "clients", {"name": "b", "scopes": []}, "scopes"),
        ("POST", "clients", {"name": " ", "scopes": ["widgets:read"]}, "name"),
        ("POST", "clients", {"name": "b\u202e", "scopes": ["widgets:read"]}, "name"),
        ("DELETE", "clients/not-a-uuid", None, "id"),
        ("PATCH", "", {"name": ""}, "name"),
        ("PATCH", "", {"name": "x" * 201}, "name"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    acme: Tenant,
    method: str,
    path: str,
    body: object,
    field: str,
) -> None:
    owner = await make_member(db, acme, Role.owner)
    headers = (await login(app, db, owner)).headers
    url = f"{API}/acme/{path.format(me=owner.id)}".rstrip("/")
    answer = await client.request(method, url, json=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"]
    assert field in [e["field"] for e in problem["errors"]], problem


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"token": ""}, 422, "token"),
        ({"token": "x" * 201}, 422, "token"),
        ({"token": "ki_\x00"}, 422, "token"),
        ({"token": 5}, 422, "token"),
        ({"token": "ki_x", "name": "\u202eevil"}, 422, "name"),
        ([], 422, "body"),
        ({"token": "ki_x", "password": "p" * 10_000}, 404, None),
    ],
)
async def test_bad_acceptances_are_problems(
    client: httpx2.AsyncClient, body: object, status: int, field: str | None
) -> None:
    answer = await client.post(ACCEPT, json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == ("validation_failed" if field else "invitation_not_found")
    assert [e["field"] for e in problem.get("errors", [])] == ([field] if field else [])
