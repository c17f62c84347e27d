"""Sessions never outlive the widget's policy: a refresh re-checks the published
require_identity and the identity secret, chatting re-checks require_identity, and no
chain of refreshes outlives ``KITHOST_SESSION_MAX_AGE_HOURS``."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import jwt as pyjwt
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.auth import signing
from kithost.auth.principals import CLI
from kithost.sessions import tokens
from kithost.settings import Settings
from kithost.widgets.service import publish_draft
from tests.conftest import create_test_app
from tests.sessions.helpers import DEVICE, SHOP, Published, mint, publish

SECRET = "wis_" + "k" * 43


def fresh_client(settings: Settings, connection: AsyncConnection) -> httpx2.AsyncClient:
    """A client of a new app: its published-widget cache has not seen the widget yet."""
    app = create_test_app(settings, connection)
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx2.AsyncClient(transport=transport, base_url="http://testserver")


async def republish(db: AsyncSession, target: Published, **config: Any) -> None:
    target.widget.draft = {**target.widget.draft, **config}
    await publish_draft(db, CLI, target.widget, published_by=None)
    await db.flush()


def assert_refused(response: httpx2.Response, code: str) -> None:
    assert (response.status_code, response.json()["code"]) == (401, code), response.text


async def test_requiring_identity_ends_anonymous_sessions(
    client: httpx2.AsyncClient, db: AsyncSession, settings: Settings, connection: AsyncConnection
) -> None:
    target = await publish(db)
    token = (await mint(client, target, {"device_id": DEVICE})).json()["token"]
    await republish(db, target, require_identity=True)
    async with fresh_client(settings, connection) as later:
        assert_refused(await mint(later, target, {"current": token}), "identity_required")
        chat = await later.post(
            f"/v1/chatkit/{target.widget.public_key}",
            json={"type": "threads.list", "params": {}},
            headers={"Authorization": f"Bearer {token}", "Origin": SHOP},
        )
        assert_refused(chat, "identity_required")


async def test_a_changed_identity_secret_ends_derived_sessions(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    target = await publish(db)
    box = app.state.secret_box
    target.widget.identity_secret = box.encrypt(SECRET)
    await db.flush()
    identity = pyjwt.encode({"sub": "42", "exp": int(time.time()) + 600}, SECRET, "HS256")
    token = (await mint(client, target, {"identity_token": identity})).json()["token"]
    refreshed = await mint(client, target, {"current": token})
    assert refreshed.status_code == 200
    target.widget.identity_secret = box.encrypt("wis_" + "r" * 43)
    await db.flush()
    assert_refused(await mint(client, target, {"current": token}), "identity_secret_changed")
    target.widget.identity_secret = None
    await db.flush()
    assert_refused(await mint(client, target, {"current": token}), "identity_secret_changed")


async def session_token(app: FastAPI, db: AsyncSession, target: Published, started: int) -> str:
    """A backend-minted user's token (no identity expiry) of a session begun at ``started``."""
    settings = app.state.settings
    claims = {
        "iss": settings.base_url,
        "aud": tokens.audience(target.widget.public_key),
        "sub": "u:42",
        "origin": SHOP,
        "tenant": str(target.tenant.id),
        "widget": str(target.widget.id),
        "sst": started,
    }
    return await signing.sign(db, app.state.secret_box, claims, 900)


async def test_refreshes_end_at_the_maximum_age(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    target = await publish(db)
    max_age = app.state.settings.session_max_age_hours * 3600
    now = int(time.time())
    young = await session_token(app, db, target, now - max_age + 300)
    refreshed = await mint(client, target, {"current": young})
    assert refreshed.json()["expires_at"] <= now - max_age + 300 + max_age
    claims = pyjwt.decode(refreshed.json()["token"], options={"verify_signature": False})
    assert claims["sst"] == now - max_age + 300
    old = await session_token(app, db, target, now - max_age - 1)
    assert_refused(await mint(client, target, {"current": old}), "session_expired")
