"""A framed chat's sessions name the page framing it (its embedder), which the widget must
allow when the session is minted, refreshed, and used to chat: an origin removed from the
widget stops a chat already open there within the config cache's seconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.auth.principals import CLI
from kithost.models import Role
from kithost.settings import Settings
from kithost.visitor.cache import REVALIDATE_SECONDS
from kithost.widgets.service import create_widget, publish_draft
from tests.conftest import config_cache, create_test_app
from tests.factories import Credentials, login, make_member, make_tenant
from tests.visitor.helpers import Clock

KITHOST = "https://kithost.example.com"
"""Kithost's public URL: the framed page ``/w/{pk}`` calls from its origin."""
SHOP = "https://shop.example.com"
BLOG = "https://blog.example.com"
DEVICE = "anon_" + "d" * 24
THREADS = {"type": "threads.list", "params": {}}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection, clock: Clock) -> FastAPI:
    app = create_test_app(settings, connection, public_url=KITHOST)
    app.state.add(config_cache(app, revalidate_after=REVALIDATE_SECONDS, clock=clock))
    return app


@dataclass(frozen=True)
class Framed:
    """A published widget allowing the shop and the blog (framed, as by default)."""

    pk: str
    api: str
    """The widget's URL in the tenant API."""
    owner: Credentials
    """The tenant owner's headers."""


async def framed_widget(app: FastAPI, db: AsyncSession) -> Framed:
    tenant = await make_tenant(db)
    widget = await create_widget(db, CLI, tenant, name="chat", origins=[SHOP, BLOG])
    await publish_draft(db, CLI, widget, published_by=None)
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    await db.flush()
    return Framed(widget.public_key, f"/api/v1/tenants/{tenant.slug}/widgets/{widget.id}", owner)


async def session(
    client: httpx2.AsyncClient, pk: str, body: dict[str, Any], origin: str = KITHOST
) -> httpx2.Response:
    return await client.post(f"/v1/embed/{pk}/session", json=body, headers={"Origin": origin})


async def chat(client: httpx2.AsyncClient, pk: str, token: str) -> httpx2.Response:
    headers = {"Origin": KITHOST, "Authorization": f"Bearer {token}"}
    return await client.post(f"/v1/chatkit/{pk}", json=THREADS, headers=headers)


def claims(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    return dict(pyjwt.decode(token, options={"verify_signature": False}))


def assert_refused(response: httpx2.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "embedder_not_allowed"
    assert response.headers["access-control-allow-origin"] == KITHOST  # the frame reads it
    assert [e["field"] for e in response.json()["errors"]] == ["embedder"]


async def test_the_framed_page_mints_only_for_an_allowed_embedder(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    pk = (await framed_widget(app, db)).pk
    for embedder in ("https://evil.example.com", "HTTPS://BLOG.EXAMPLE.COM", KITHOST, None):
        body = {"device_id": DEVICE} | ({"embedder": embedder} if embedder else {})
        assert_refused(await session(client, pk, body))

    minted = await session(client, pk, {"device_id": DEVICE, "embedder": BLOG})
    assert (claims(minted)["origin"], claims(minted)["emb"]) == (KITHOST, BLOG)
    # A page minting for itself (the direct placement) binds its own origin, as before.
    direct = await session(client, pk, {"device_id": DEVICE, "embedder": "https://x.test"}, SHOP)
    assert claims(direct)["origin"] == SHOP
    assert "emb" not in claims(direct)


async def test_a_removed_origin_stops_the_framed_chats_open_there(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, clock: Clock
) -> None:
    widget = await framed_widget(app, db)
    pk = widget.pk
    on_blog = await session(client, pk, {"device_id": DEVICE, "embedder": BLOG})
    on_shop = await session(client, pk, {"device_id": DEVICE, "embedder": SHOP})
    # Refreshes keep the embedder, and the chat answers while the blog is allowed.
    refreshed = await session(client, pk, {"current": on_blog.json()["token"]})
    assert claims(refreshed)["emb"] == BLOG
    blog_token = refreshed.json()["token"]
    assert (await chat(client, pk, blog_token)).status_code == 200

    origins = f"{widget.api}/origins"
    listed = (await client.get(origins, headers=widget.owner.headers)).json()
    [blog] = [o["id"] for o in listed if o["origin"] == BLOG]
    removed = await client.delete(f"{origins}/{blog}", headers=widget.owner.headers)
    assert removed.status_code == 204, removed.text
    clock.now += REVALIDATE_SECONDS + 0.1  # the config cache's lifetime

    assert_refused(await session(client, pk, {"current": blog_token}))
    assert_refused(await chat(client, pk, blog_token))
    assert_refused(await session(client, pk, {"device_id": DEVICE, "embedder": BLOG}))
    # The shop's chat goes on.
    shop = await session(client, pk, {"current": on_shop.json()["token"]})
    assert claims(shop)["emb"] == SHOP
    assert (await chat(client, pk, shop.json()["token"])).status_code == 200


async def test_the_dashboard_preview_frames_the_chat_from_kithosts_own_page(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget = await framed_widget(app, db)
    made = await client.post(f"{widget.api}/preview", headers=widget.owner.headers)
    assert made.status_code == 201, made.text
    key = made.json()["public_key"]
    assert_refused(await session(client, key, {"device_id": DEVICE, "embedder": SHOP}))
    minted = await session(client, key, {"device_id": DEVICE, "embedder": KITHOST})
    assert claims(minted)["emb"] == KITHOST  # the preview page's: the dashboard's origin
    token = minted.json()["token"]
    assert (await chat(client, key, token)).status_code == 200
    refreshed = await session(client, key, {"current": token})
    assert (await chat(client, key, refreshed.json()["token"])).status_code == 200
