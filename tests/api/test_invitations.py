"""Invitations over REST: created with a link shown once, listed, revoked, and accepted
once by the invited email, signed in or by creating the account."""

from __future__ import annotations

from datetime import timedelta

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import repository as auth_repository
from kithost.auth.passwords import verify_password
from kithost.auth.principals import CLI
from kithost.auth.roles import ALL_SCOPES, ROLE_SCOPES
from kithost.auth.scopes import Scope
from kithost.clients import repository as clients
from kithost.invitations import repository as invitations
from kithost.invitations.service import create_invitation
from kithost.kit.tokens import hash_secret
from kithost.models import Role, Tenant
from kithost.models.base import utcnow
from kithost.users import repository as users
from kithost.users.service import create_user
from tests.api.helpers import audit_actions, token_of
from tests.factories import (
    PASSWORD,
    Credentials,
    client_token,
    login,
    make_member,
    make_tenant,
    make_user,
)

ACCEPT = "/api/v1/invitations/accept"


def invitations_url(tenant: Tenant) -> str:
    return f"/api/v1/tenants/{tenant.slug}/invitations"


async def invite(app: FastAPI, db: AsyncSession, tenant: Tenant, email: str, role: Role) -> str:
    """An invitation's token, the invitation made by the CLI."""
    new = await create_invitation(
        db, app.state.settings, CLI, tenant, email=email, role=role, invited_by=None
    )
    return token_of(new.accept_url)


@pytest.fixture
async def acme(db: AsyncSession) -> Tenant:
    return await make_tenant(db, "acme")


@pytest.fixture
async def admin(app: FastAPI, db: AsyncSession, acme: Tenant) -> Credentials:
    return await login(app, db, await make_member(db, acme, Role.admin))


async def test_the_link_is_shown_once_and_only_its_hash_kept(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, admin: Credentials
) -> None:
    created = await client.post(
        invitations_url(acme),
        json={"email": " New@Example.test", "role": "editor"},
        headers=admin.headers,
    )
    assert created.status_code == 201
    body = created.json()
    settings = app.state.settings
    assert body["accept_url"].startswith(f"{settings.base_url}/admin/invite#token=")
    token = token_of(body["accept_url"])
    assert len(token) >= 43  # 256 bits in URL-safe base64
    assert (body["invitation"]["email"], body["invitation"]["role"]) == (
        "new@example.test",
        "editor",
    )

    [stored] = await invitations.list_pending(db, acme.id)
    assert stored.token_hash == hash_secret(token)
    assert token not in {stored.token_hash, stored.email}
    expected_expiry = utcnow() + timedelta(hours=settings.invitation_ttl_hours)
    assert abs(stored.expires_at - expected_expiry) < timedelta(minutes=1)
    assert "invitation.created" in await audit_actions(db, acme.id)

    listed = await client.get(invitations_url(acme), headers=admin.headers)
    assert [i["id"] for i in listed.json()] == [str(stored.id)]
    assert set(listed.json()[0]) == {
        "id",
        "email",
        "role",
        "invited_by_id",
        "invited_by",
        "created_at",
        "expires_at",
    }
    assert token not in listed.text


async def test_the_list_says_who_invited(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    """A member, an API client or the CLI, as the audit log names them: an invitation an
    API client made has no inviting user, and the CLI's is named by no column."""
    member = await make_member(db, acme, Role.admin)
    backend = await client_token(app, db, acme, sorted(ALL_SCOPES))
    [api_client] = await clients.list_clients(db, acme.id)

    async def invite_as(by: Credentials, email: str) -> dict[str, object]:
        body = {"email": email, "role": "viewer"}
        made = await client.post(invitations_url(acme), json=body, headers=by.headers)
        assert made.status_code == 201, made.text
        invitation: dict[str, object] = made.json()["invitation"]
        return invitation

    by_client = await invite_as(backend, "by-client@example.test")
    by_member = await invite_as(await login(app, db, member), "by-member@example.test")
    await invite(app, db, acme, "by-cli@example.test", Role.viewer)
    await db.flush()  # its audit entry

    assert by_client["invited_by"] == {"type": "client", "id": api_client.client_id}
    assert by_member["invited_by"] == {"type": "user", "id": str(member.id)}
    listed = await client.get(invitations_url(acme), headers=backend.headers)
    assert {i["email"]: (i["invited_by"], i["invited_by_id"]) for i in listed.json()} == {
        "by-client@example.test": ({"type": "client", "id": api_client.client_id}, None),
        "by-member@example.test": ({"type": "user", "id": str(member.id)}, str(member.id)),
        "by-cli@example.test": ({"type": "cli", "id": None}, None),
    }


@pytest.mark.parametrize(
    "email",
    [
        "<script>@example.test",
        'a"b@example.test',
        "new@" + "a" * 64 + ".example.test",  # a DNS label is at most 63
        "new@localhost",
        "new@@example.test",
    ],
)
async def test_an_address_that_cannot_be_one_is_refused(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Tenant, admin: Credentials, email: str
) -> None:
    body = {"email": email, "role": "editor"}
    refused = await client.post(invitations_url(acme), json=body, headers=admin.headers)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["email"]
    assert await invitations.list_pending(db, acme.id) == []


async def test_look_alike_addresses_are_one_account(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Tenant, admin: Credentials
) -> None:
    """Full-width letters fold to their ASCII forms (NFKC): U+FF56 (a full-width v) then
    ``iewer@`` is ``viewer@``, so an invitation can't name an account that looks like
    another one."""
    body = {"email": "\uff56iewer@Example.test", "role": "viewer"}
    created = await client.post(invitations_url(acme), json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    assert created.json()["invitation"]["email"] == "viewer@example.test"


async def test_only_owners_invite_owners(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, admin: Credentials
) -> None:
    body = {"email": "boss@example.test", "role": "owner"}
    refused = await client.post(invitations_url(acme), json=body, headers=admin.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "owner_role_required")
    assert await invitations.list_pending(db, acme.id) == []
    owner = await login(app, db, await make_member(db, acme, Role.owner))
    assert (await client.post(invitations_url(acme), json=body, headers=owner.headers)).is_success


async def test_a_new_invitation_replaces_the_pending_one(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, admin: Credentials
) -> None:
    first = await invite(app, db, acme, "new@example.test", Role.viewer)
    body = {"email": "new@example.test", "role": "editor"}
    second = await client.post(invitations_url(acme), json=body, headers=admin.headers)
    assert len(await invitations.list_pending(db, acme.id)) == 1

    new = await create_user(db, CLI, "new@example.test", password=PASSWORD)
    user = await login(app, db, new.user)
    stale = await client.post(ACCEPT, json={"token": first}, headers=user.headers)
    assert (stale.status_code, stale.json()["code"]) == (404, "invitation_not_found")
    fresh = await client.post(
        ACCEPT, json={"token": token_of(second.json()["accept_url"])}, headers=user.headers
    )
    assert (fresh.status_code, fresh.json()["role"]) == (200, "editor")


async def test_revoked_invitations_cannot_be_used(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, admin: Credentials
) -> None:
    other = await make_tenant(db, "other")
    token = await invite(app, db, acme, "new@example.test", Role.viewer)
    await invite(app, db, other, "new@example.test", Role.viewer)
    [pending] = await invitations.list_pending(db, acme.id)
    [foreign] = await invitations.list_pending(db, other.id)

    cross = await client.delete(f"{invitations_url(acme)}/{foreign.id}", headers=admin.headers)
    assert (cross.status_code, cross.json()["code"]) == (404, "invitation_not_found")
    assert len(await invitations.list_pending(db, other.id)) == 1

    revoked = await client.delete(f"{invitations_url(acme)}/{pending.id}", headers=admin.headers)
    assert revoked.status_code == 204
    assert "invitation.revoked" in await audit_actions(db, acme.id)
    again = await client.delete(f"{invitations_url(acme)}/{pending.id}", headers=admin.headers)
    assert again.status_code == 404
    used = await client.post(ACCEPT, json={"token": token, "password": PASSWORD})
    assert (used.status_code, used.json()["code"]) == (404, "invitation_not_found")
    assert await users.get_by_email(db, "new@example.test") is None


async def test_nobody_cancels_an_invitation_to_a_role_they_could_not_give(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, admin: Credentials
) -> None:
    """Cancelling an invitation takes back the role it offers, as a removal does, under the
    same rule as making it: an admin cannot cancel an owner's invitation of an owner (403
    ``owner_role_required``), a client holding ``members:write`` alone cannot cancel one of
    a viewer (403 ``role_too_high`` on ``role``); both stay pending. An owner cancels the
    first, a client holding a viewer's scopes the second."""
    owner = await login(app, db, await make_member(db, acme, Role.owner))
    body = {"email": "boss@example.test", "role": "owner"}
    made = await client.post(invitations_url(acme), json=body, headers=owner.headers)
    assert made.status_code == 201, made.text
    to_owner = f"{invitations_url(acme)}/{made.json()['invitation']['id']}"
    await invite(app, db, acme, "new@example.test", Role.viewer)
    [viewer] = [i for i in await invitations.list_pending(db, acme.id) if i.role is Role.viewer]
    to_viewer = f"{invitations_url(acme)}/{viewer.id}"
    writer = await client_token(app, db, acme, [Scope.members_write])

    refused = await client.delete(to_owner, headers=admin.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "owner_role_required")
    refused = await client.delete(to_viewer, headers=writer.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "role_too_high")
    assert [e["field"] for e in refused.json()["errors"]] == ["role"]
    assert len(await invitations.list_pending(db, acme.id)) == 2
    assert "invitation.revoked" not in await audit_actions(db, acme.id)

    assert (await client.delete(to_owner, headers=owner.headers)).status_code == 204
    bounded = await client_token(
        app, db, acme, sorted(ROLE_SCOPES[Role.viewer] | {Scope.members_write})
    )
    assert (await client.delete(to_viewer, headers=bounded.headers)).status_code == 204
    assert await invitations.list_pending(db, acme.id) == []


async def test_a_signed_in_user_accepts_once(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    user = await make_user(db)
    token = await invite(app, db, acme, user.email, Role.editor)
    credentials = await login(app, db, user)

    accepted = await client.post(ACCEPT, json={"token": token}, headers=credentials.headers)
    assert accepted.status_code == 200
    assert (accepted.json()["tenant"]["slug"], accepted.json()["role"]) == ("acme", "editor")
    membership = await auth_repository.membership(db, acme.id, user.id)
    assert membership is not None
    assert membership.role is Role.editor
    assert {"invitation.accepted", "member.added"} <= set(await audit_actions(db, acme.id))
    assert await invitations.list_pending(db, acme.id) == []

    twice = await client.post(ACCEPT, json={"token": token}, headers=credentials.headers)
    assert (twice.status_code, twice.json()["code"]) == (410, "invitation_used")
    unknown = await client.post(ACCEPT, json={"token": "ki_nope"}, headers=credentials.headers)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "invitation_not_found")


async def test_accepting_as_a_member_changes_the_role(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    viewer = await make_member(db, acme, Role.viewer)
    token = await invite(app, db, acme, viewer.email, Role.admin)
    credentials = await login(app, db, viewer)
    accepted = await client.post(ACCEPT, json={"token": token}, headers=credentials.headers)
    assert (accepted.status_code, accepted.json()["role"]) == (200, "admin")
    membership = await auth_repository.membership(db, acme.id, viewer.id)
    assert membership is not None
    await db.refresh(membership)
    assert membership.role is Role.admin


async def test_accepting_never_lowers_a_role(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, admin: Credentials
) -> None:
    """An admin may not demote an owner (``PATCH …/members``: 403), and an invitation to
    the owner as a viewer must not do it either."""
    owner = await make_member(db, acme, Role.owner)
    await make_member(db, acme, Role.owner)
    created = await client.post(
        invitations_url(acme), json={"email": owner.email, "role": "viewer"}, headers=admin.headers
    )
    assert created.status_code == 201, created.text

    credentials = await login(app, db, owner)
    accepted = await client.post(
        ACCEPT, json={"token": token_of(created.json()["accept_url"])}, headers=credentials.headers
    )

    assert (accepted.status_code, accepted.json()["role"]) == (200, "owner")
    membership = await auth_repository.membership(db, acme.id, owner.id)
    assert membership is not None
    await db.refresh(membership)
    assert membership.role is Role.owner


@pytest.mark.parametrize("change", ["removed", "demoted"])
async def test_a_members_pending_invitations_go_when_they_are_removed_or_demoted(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, change: str
) -> None:
    """Whom an admin invited must not get in after the admin is removed or demoted, nor
    the admin get back in or up by an invitation sent to them before (probes: an admin
    invited a second account of theirs, was removed, and the account joined as admin; a
    demotion answered 200, then the member accepted an invitation as owner)."""
    inviter = await make_member(db, acme, Role.admin)
    as_inviter = await login(app, db, inviter)
    created = await client.post(
        invitations_url(acme),
        json={"email": "alt@example.test", "role": "admin"},
        headers=as_inviter.headers,
    )
    assert created.status_code == 201, created.text
    sent = await invite(app, db, acme, inviter.email, Role.owner)
    kept = await invite(app, db, acme, "kept@example.test", Role.viewer)  # the CLI's
    owner = await login(app, db, await make_member(db, acme, Role.owner))
    member = f"/api/v1/tenants/{acme.slug}/members/{inviter.id}"

    if change == "removed":
        done = await client.delete(member, headers=owner.headers)
    else:
        done = await client.patch(member, json={"role": "editor"}, headers=owner.headers)
    assert done.status_code < 300, done.text

    pending = await invitations.list_pending(db, acme.id)
    assert [i.token_hash for i in pending] == [hash_secret(kept)]
    alt = (await create_user(db, CLI, "alt@example.test", password=PASSWORD)).user
    for token, user in [(token_of(created.json()["accept_url"]), alt), (sent, inviter)]:
        refused = await client.post(
            ACCEPT, json={"token": token}, headers=(await login(app, db, user)).headers
        )
        assert (refused.status_code, refused.json()["code"]) == (404, "invitation_not_found")
    assert await auth_repository.membership(db, acme.id, alt.id) is None
    membership = await auth_repository.membership(db, acme.id, inviter.id)
    if change == "removed":
        assert membership is None
    else:
        assert membership is not None
        await db.refresh(membership)
        assert membership.role is Role.editor


async def test_only_the_invited_email_accepts(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    token = await invite(app, db, acme, "new@example.test", Role.viewer)
    intruder = await make_user(db)
    refused = await client.post(
        ACCEPT, json={"token": token}, headers=(await login(app, db, intruder)).headers
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "invitation_email_mismatch")
    assert await auth_repository.membership(db, acme.id, intruder.id) is None
    assert len(await invitations.list_pending(db, acme.id)) == 1


async def test_an_expired_invitation_is_gone(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    user = await make_user(db)
    token = await invite(app, db, acme, user.email, Role.viewer)
    [pending] = await invitations.list_pending(db, acme.id)
    pending.expires_at = utcnow() - timedelta(seconds=1)
    await db.flush()
    expired = await client.post(
        ACCEPT, json={"token": token}, headers=(await login(app, db, user)).headers
    )
    assert (expired.status_code, expired.json()["code"]) == (410, "invitation_expired")
    assert await auth_repository.membership(db, acme.id, user.id) is None


async def test_a_new_account_is_created_by_accepting(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    token = await invite(app, db, acme, "new@example.test", Role.editor)
    missing = await client.post(ACCEPT, json={"token": token})
    assert (missing.status_code, missing.json()["errors"][0]["field"]) == (422, "password")
    weak = await client.post(ACCEPT, json={"token": token, "password": "short"})
    assert (weak.status_code, weak.json()["errors"][0]["field"]) == (422, "password")

    body = {"token": token, "password": PASSWORD, "name": "New Person"}
    accepted = await client.post(ACCEPT, json=body)
    assert (accepted.status_code, accepted.json()["role"]) == (200, "editor")
    user = await users.get_by_email(db, "new@example.test")
    assert user is not None
    assert user.name == "New Person"
    assert verify_password(user.password_hash, PASSWORD)
    membership = await auth_repository.membership(db, acme.id, user.id)
    assert membership is not None
    assert membership.role is Role.editor
    again = await client.post(ACCEPT, json=body)
    assert (again.status_code, again.json()["code"]) == (410, "invitation_used")


async def test_an_existing_account_must_sign_in_to_accept(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    user = await make_user(db)
    token = await invite(app, db, acme, user.email, Role.viewer)
    anonymous = await client.post(ACCEPT, json={"token": token, "password": "another password 123"})
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    await db.refresh(user)
    assert verify_password(user.password_hash, PASSWORD)
    assert await auth_repository.membership(db, acme.id, user.id) is None
