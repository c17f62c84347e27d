"""A widget's identity secret over REST: generated, shown once, stored encrypted; a new one
replaces the old at once; each change is a new revision of the widget; another tenant's
widget is not found; only those who mint sessions (owners, admins) set or remove it."""

from __future__ import annotations

import time
import uuid

import httpx2
import jwt as pyjwt
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.errors import Unauthorized
from kithost.models import Role, Tenant, Widget
from kithost.secrets.service import widget_identity_secret
from kithost.sessions.identity import verify_identity_token
from kithost.widgets.service import create_widget
from tests.factories import Credentials, login, make_member, make_tenant
from tests.secrets.helpers import assert_never_logged, audit_entries


def url(tenant: Tenant, widget_id: uuid.UUID) -> str:
    return f"/api/v1/tenants/{tenant.slug}/widgets/{widget_id}/identity-secret"


def identity_token(secret: str) -> str:
    """A token of the tenant's backend for its user ``user-1``, signed with ``secret``."""
    return pyjwt.encode({"sub": "user-1", "exp": int(time.time()) + 60}, secret, "HS256")


@pytest.fixture
async def widget(db: AsyncSession, acme: Tenant) -> Widget:
    return await create_widget(db, CLI, acme, name="Support")


@pytest.fixture
async def admin(app: FastAPI, db: AsyncSession, acme: Tenant) -> Credentials:
    return await login(app, db, await make_member(db, acme, Role.admin))


async def test_the_secret_is_shown_once_and_stored_encrypted(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    acme: Tenant,
    widget: Widget,
    admin: Credentials,
) -> None:
    start = widget.revision
    created = await client.post(url(acme, widget.id), headers=admin.headers)
    assert created.status_code == 200
    secret = created.json()["identity_secret"]
    assert created.json() == {"identity_secret": secret, "revision": start + 1}
    assert secret.startswith("wis_")
    assert len(secret) >= 4 + 43  # 256 bits in URL-safe base64

    await db.refresh(widget)
    assert widget.revision == start + 1
    assert widget.identity_secret is not None
    assert secret[4:] not in widget.identity_secret
    assert app.state.secret_box.decrypt(widget.identity_secret) == secret
    assert widget_identity_secret(app.state.secret_box, widget) == secret

    entries = await audit_entries(db, acme.id)
    [entry] = [e for e in entries if e.action.startswith("widget.identity_secret")]
    assert (entry.action, entry.target_type, entry.target_id) == (
        "widget.identity_secret_created",
        "widget",
        str(widget.id),
    )
    assert entry.data == {
        "before": {"has_identity_secret": False, "revision": start},
        "after": {"has_identity_secret": True, "revision": start + 1},
    }
    assert_never_logged(entries, secret, widget.identity_secret)


async def test_a_new_secret_replaces_the_old_at_once(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    acme: Tenant,
    widget: Widget,
    admin: Credentials,
) -> None:
    start = widget.revision
    old = (await client.post(url(acme, widget.id), headers=admin.headers)).json()
    new = (await client.post(url(acme, widget.id), headers=admin.headers)).json()
    assert new["identity_secret"] != old["identity_secret"]
    assert new["revision"] == start + 2

    await db.refresh(widget)
    current = widget_identity_secret(app.state.secret_box, widget)
    assert current is not None
    assert current == new["identity_secret"]
    assert verify_identity_token(identity_token(new["identity_secret"]), current).verified
    with pytest.raises(Unauthorized):
        verify_identity_token(identity_token(old["identity_secret"]), current)

    entries = await audit_entries(db, acme.id)
    [rotated] = [e for e in entries if e.action == "widget.identity_secret_rotated"]
    assert rotated.data == {
        "before": {"revision": start + 1},
        "after": {"revision": start + 2},
    }
    assert_never_logged(entries, old["identity_secret"], new["identity_secret"])


async def test_removing_the_secret(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    acme: Tenant,
    widget: Widget,
    admin: Credentials,
) -> None:
    secret = (await client.post(url(acme, widget.id), headers=admin.headers)).json()
    removed = await client.delete(url(acme, widget.id), headers=admin.headers)
    assert removed.status_code == 204
    await db.refresh(widget)
    assert widget.identity_secret is None
    assert widget_identity_secret(app.state.secret_box, widget) is None
    assert widget.revision == secret["revision"] + 1

    again = await client.delete(url(acme, widget.id), headers=admin.headers)
    assert again.status_code == 204
    await db.refresh(widget)
    assert widget.revision == secret["revision"] + 1
    entries = await audit_entries(db, acme.id)
    assert [e.data for e in entries if e.action == "widget.identity_secret_removed"] == [
        {
            "before": {"has_identity_secret": True, "revision": secret["revision"]},
            "after": {"has_identity_secret": False, "revision": secret["revision"] + 1},
        }
    ]


async def test_another_tenants_widget_is_not_found(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, admin: Credentials
) -> None:
    other = await make_tenant(db, "other")
    theirs = await create_widget(db, CLI, other, name="Theirs")
    owner = await login(app, db, await make_member(db, other, Role.owner))
    secret = (await client.post(url(other, theirs.id), headers=owner.headers)).json()

    for widget_id in (theirs.id, uuid.uuid4()):
        for method in ("POST", "DELETE"):
            response = await client.request(method, url(acme, widget_id), headers=admin.headers)
            assert (response.status_code, response.json()["code"]) == (404, "widget_not_found")
    hidden = await client.post(url(other, theirs.id), headers=admin.headers)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "tenant_not_found")

    await db.refresh(theirs)
    assert theirs.revision == secret["revision"]
    assert widget_identity_secret(app.state.secret_box, theirs) == secret["identity_secret"]


async def test_editors_can_neither_set_the_secret_nor_mint_sessions(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, widget: Widget
) -> None:
    """Either would let them sign in as any end user and read that user's threads, which
    their role does not (a probe: an editor minted a session for user 42 and listed 42's
    messages while ``GET …/conversations`` answered them 403)."""
    editor = await login(app, db, await make_member(db, acme, Role.editor))
    mint = {"user": "42", "origin": "https://shop.example.com"}
    sessions = f"/api/v1/tenants/{acme.slug}/widgets/{widget.id}/sessions"

    for response in (
        await client.post(url(acme, widget.id), headers=editor.headers),
        await client.delete(url(acme, widget.id), headers=editor.headers),
        await client.post(sessions, json=mint, headers=editor.headers),
    ):
        assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")
    await db.refresh(widget)
    assert widget.identity_secret is None
