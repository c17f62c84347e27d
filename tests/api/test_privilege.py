"""Nobody grants a role or a scope beyond their own: invitations, role changes and new API
clients are bounded by the caller's scopes (a client's, or those of a user's role)."""

from __future__ import annotations

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.roles import ROLE_SCOPES
from kithost.auth.scopes import Scope
from kithost.invitations import repository as invitations
from kithost.models import Role
from tests.factories import client_token, make_member, make_tenant

PREFIX = "/api/v1/tenants/acme"


def assert_escalation(response: httpx2.Response, code: str, field: str) -> None:
    body = response.json()
    assert (response.status_code, body["code"]) == (403, code)
    assert [e["field"] for e in body["errors"]] == [field]


async def test_a_members_writer_cannot_invite_or_promote_above_its_scopes(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    acme = await make_tenant(db, "acme")
    viewer = await make_member(db, acme, Role.viewer)
    writer = await client_token(app, db, acme, [Scope.members_write])
    invite = {"email": "mallory@example.test", "role": "admin"}
    refused = await client.post(f"{PREFIX}/invitations", json=invite, headers=writer.headers)
    assert_escalation(refused, "role_too_high", "role")
    assert await invitations.list_pending(db, acme.id) == []
    promote = {"role": "admin"}
    url = f"{PREFIX}/members/{viewer.id}"
    assert_escalation(
        await client.patch(url, json=promote, headers=writer.headers), "role_too_high", "role"
    )

    # Holding a role's every scope is what it takes to give it.
    viewers = sorted(ROLE_SCOPES[Role.viewer] | {Scope.members_write})
    bounded = await client_token(app, db, acme, viewers)
    invite["role"] = "viewer"
    made = await client.post(f"{PREFIX}/invitations", json=invite, headers=bounded.headers)
    assert made.status_code == 201
    editor = await client.patch(url, json={"role": "editor"}, headers=bounded.headers)
    assert_escalation(editor, "role_too_high", "role")


async def test_clients_get_only_scopes_their_creator_holds(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    acme = await make_tenant(db, "acme")
    maker = await client_token(app, db, acme, [Scope.clients_write, Scope.widgets_read])
    body = {"name": "all", "scopes": [s.value for s in Scope]}
    refused = await client.post(f"{PREFIX}/clients", json=body, headers=maker.headers)
    assert_escalation(refused, "scope_escalation", "scopes")
