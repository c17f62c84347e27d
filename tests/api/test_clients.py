"""API clients over REST: the secret shown once, never more than the creator's scopes,
listed without secrets and with who made them, revoked for good, kept by the tenant when
their maker goes."""

from __future__ import annotations

import httpx2
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.auth.roles import ALL_SCOPES
from kithost.auth.scopes import Scope
from kithost.clients import repository as clients
from kithost.clients.service import create_client
from kithost.invitations import repository as invitation_repository
from kithost.invitations.service import create_invitation
from kithost.kit.tokens import hash_secret
from kithost.models import AuditLogEntry, Role
from kithost.users import repository as users
from tests.api.helpers import audit_actions, token_of
from tests.auth.helpers import GRANT, TOKEN_URL, basic
from tests.factories import PASSWORD, Credentials, client_token, login, make_member, make_tenant

CLIENTS = "/api/v1/tenants/acme/clients"
ACCEPT = "/api/v1/invitations/accept"


async def test_the_secret_is_shown_once_and_only_its_hash_kept(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    admin = await login(app, db, await make_member(db, tenant, Role.admin))
    body = {"name": " backend ", "scopes": ["widgets:read", "sessions:mint", "widgets:read"]}
    created = await client.post(CLIENTS, json=body, headers=admin.headers)
    assert created.status_code == 201
    new = created.json()
    secret = new["client_secret"]
    assert secret.startswith("ks_")
    assert (new["client"]["name"], new["client"]["scopes"]) == (
        "backend",
        ["sessions:mint", "widgets:read"],
    )
    assert new["client"]["client_id"].startswith("kc_")

    [stored] = await clients.list_clients(db, tenant.id)
    assert stored.secret_hash == hash_secret(secret)
    assert secret not in {stored.secret_hash, stored.client_id, stored.name}
    assert "client.created" in await audit_actions(db, tenant.id)
    entry = await db.scalar(select(AuditLogEntry).where(AuditLogEntry.target_id == str(stored.id)))
    assert entry is not None
    # The log names the client as the dashboard shows it, long after it is revoked.
    assert entry.data == {
        "name": "backend",
        "client_id": stored.client_id,
        "scopes": ["sessions:mint", "widgets:read"],
    }

    listed = await client.get(CLIENTS, headers=admin.headers)
    assert listed.status_code == 200
    assert listed.json() == [new["client"]]
    assert set(new["client"]) == {
        "id",
        "client_id",
        "name",
        "scopes",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    }
    assert secret not in listed.text
    assert stored.secret_hash not in listed.text


async def test_a_client_never_gets_scopes_its_creator_lacks(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    backend = await client_token(app, db, tenant, [Scope.clients_write, Scope.widgets_read])
    escalated = await client.post(
        CLIENTS,
        json={"name": "more", "scopes": ["widgets:read", "members:write"]},
        headers=backend.headers,
    )
    assert (escalated.status_code, escalated.json()["code"]) == (403, "scope_escalation")
    assert "members:write" in escalated.json()["detail"]
    assert len(await clients.list_clients(db, tenant.id)) == 1
    same = await client.post(
        CLIENTS, json={"name": "same", "scopes": ["widgets:read"]}, headers=backend.headers
    )
    assert same.status_code == 201


async def test_invalid_clients_are_refused(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    for body, field in [
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["widgets:everything"]}, "scopes.0"),
        ({"name": " ", "scopes": ["widgets:read"]}, "name"),
    ]:
        response = await client.post(CLIENTS, json=body, headers=owner.headers)
        assert (response.status_code, response.json()["errors"][0]["field"]) == (422, field)
    assert await clients.list_clients(db, tenant.id) == []


async def test_a_revoked_client_is_locked_out_and_revoking_again_changes_nothing(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant, other = await make_tenant(db, "acme"), await make_tenant(db, "other")
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    target = await client_token(app, db, tenant, [Scope.members_read])
    [stored] = await clients.list_clients(db, tenant.id)
    foreign = await create_client(db, CLI, other, name="theirs", scopes=[Scope.widgets_read])
    members = "/api/v1/tenants/acme/members"
    assert (await client.get(members, headers=target.headers)).status_code == 200

    cross = await client.delete(f"{CLIENTS}/{foreign.client.id}", headers=owner.headers)
    assert (cross.status_code, cross.json()["code"]) == (404, "client_not_found")
    await db.refresh(foreign.client)
    assert foreign.client.revoked_at is None

    assert (await client.delete(f"{CLIENTS}/{stored.id}", headers=owner.headers)).status_code == 204
    await db.refresh(stored)
    revoked_at = stored.revoked_at
    assert revoked_at is not None
    locked_out = await client.get(members, headers=target.headers)
    assert (locked_out.status_code, locked_out.json()["code"]) == (401, "invalid_token")

    assert (await client.delete(f"{CLIENTS}/{stored.id}", headers=owner.headers)).status_code == 204
    await db.refresh(stored)
    assert stored.revoked_at == revoked_at
    assert (await audit_actions(db, tenant.id)).count("client.revoked") == 1
    listed = await client.get(CLIENTS, headers=owner.headers)
    assert [c["revoked_at"] is not None for c in listed.json()] == [True]


async def test_revoking_a_client_withdraws_the_invitations_it_made(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """Revoking a leaked client leaves none of its invitations to accept (a probe: a
    revoked client's pending admin invitation was accepted, and the new account read
    conversations); other clients' and the CLI's invitations stay, as accepted ones do."""
    tenant = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    leaked = await client_token(app, db, tenant, sorted(ALL_SCOPES))
    other = await client_token(app, db, tenant, sorted(ALL_SCOPES))
    invitations = "/api/v1/tenants/acme/invitations"

    async def invitation(email: str, by: Credentials) -> str:
        made = await client.post(
            invitations, json={"email": email, "role": "admin"}, headers=by.headers
        )
        assert made.status_code == 201, made.text
        return token_of(made.json()["accept_url"])

    joined = await invitation("joined@example.test", leaked)
    accepted = await client.post(ACCEPT, json={"token": joined, "password": PASSWORD})
    assert accepted.status_code == 200, accepted.text
    pending = await invitation("alt2@example.test", leaked)
    kept = await invitation("kept@example.test", other)
    new = await create_invitation(
        db,
        app.state.settings,
        CLI,
        tenant,
        email="cli@example.test",
        role=Role.viewer,
        invited_by=None,
    )
    [leaked_client, _] = await clients.list_clients(db, tenant.id)

    revoked = await client.delete(f"{CLIENTS}/{leaked_client.id}", headers=owner.headers)

    assert revoked.status_code == 204
    left = await client.get(invitations, headers=owner.headers)
    assert sorted(i["email"] for i in left.json()) == ["cli@example.test", "kept@example.test"]
    refused = await client.post(ACCEPT, json={"token": pending, "password": PASSWORD})
    assert (refused.status_code, refused.json()["code"]) == (404, "invitation_not_found")
    assert await users.get_by_email(db, "alt2@example.test") is None
    assert await users.get_by_email(db, "joined@example.test") is not None
    for token in (kept, token_of(new.accept_url)):
        assert await invitation_repository.get_by_token_hash(db, hash_secret(token)) is not None
    entry = await db.scalar(
        select(AuditLogEntry).where(
            AuditLogEntry.tenant_id == tenant.id, AuditLogEntry.action == "client.revoked"
        )
    )
    assert entry is not None
    assert entry.data == {"invitations_withdrawn": 1}


async def test_a_client_belongs_to_the_tenant_and_outlives_its_maker(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """A member's removal, or the revocation of a client that made clients, leaves the
    clients they made working (the tenant's backends go on); the list says who made each,
    and the audit entry of the removal names the live ones, which whoever may revoke them
    decides about."""
    tenant = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    maker = await make_member(db, tenant, Role.admin)
    admin = await login(app, db, maker)

    async def create(name: str, scopes: list[str], by: Credentials) -> dict[str, str]:
        made = await client.post(CLIENTS, json={"name": name, "scopes": scopes}, headers=by.headers)
        assert made.status_code == 201, made.text
        return {
            "client_id": made.json()["client"]["client_id"],
            "id": made.json()["client"]["id"],
            "secret": made.json()["client_secret"],
        }

    async def bearer(made: dict[str, str]) -> Credentials:
        issued = await client.post(
            TOKEN_URL, data=GRANT, headers=basic(made["client_id"], made["secret"])
        )
        assert issued.status_code == 200, issued.text
        return Credentials({"Authorization": f"Bearer {issued.json()['access_token']}"})

    kept = await create("backend", ["widgets:read", "clients:write"], admin)
    dropped = await create("old", ["widgets:read"], admin)
    assert (await client.delete(f"{CLIENTS}/{dropped['id']}", headers=owner.headers)).is_success
    kept_token = await bearer(kept)
    child = await create("child", ["widgets:read"], kept_token)

    listed = {
        c["name"]: c["created_by"]
        for c in (await client.get(CLIENTS, headers=owner.headers)).json()
    }
    assert listed == {
        "backend": {"type": "user", "id": str(maker.id)},
        "old": {"type": "user", "id": str(maker.id)},
        "child": {"type": "client", "id": kept["client_id"]},
    }

    removed = await client.delete(f"/api/v1/tenants/acme/members/{maker.id}", headers=owner.headers)
    assert removed.status_code == 204
    widgets = "/api/v1/tenants/acme/widgets"
    assert (await client.get(widgets, headers=admin.headers)).status_code == 404
    assert (await client.get(widgets, headers=kept_token.headers)).status_code == 200
    assert (await client.get(widgets, headers=(await bearer(kept)).headers)).status_code == 200

    assert (await client.delete(f"{CLIENTS}/{kept['id']}", headers=owner.headers)).is_success
    assert (await client.get(widgets, headers=kept_token.headers)).status_code == 401
    assert (await client.get(widgets, headers=(await bearer(child)).headers)).status_code == 200

    entries = {
        e.action: e.data
        for e in await db.scalars(
            select(AuditLogEntry).where(
                AuditLogEntry.tenant_id == tenant.id,
                AuditLogEntry.action.in_(["member.removed", "client.revoked"]),
                AuditLogEntry.target_id != dropped["id"],
            )
        )
    }
    assert entries == {
        "member.removed": {"role": "admin", "clients_kept": [kept["client_id"]]},
        "client.revoked": {"clients_kept": [child["client_id"]]},
    }
