"""A visitor host of its own (``KITHOST_VISITOR_URL``, the chart's ``ingress.visitorHost``):
the framed page loads from it, so its requests come from that origin, which the visitor
routes take as Kithost's own, as they take ``KITHOST_PUBLIC_URL``'s; sessions send the
chat there, a backend's framed session is bound to it, and the dashboard's snippets name it."""

from __future__ import annotations

import httpx2
import jwt as pyjwt
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from kithost.auth.scopes import Scope
from kithost.models import Role
from kithost.settings import Settings
from tests.conftest import create_test_app, operator_sessions
from tests.factories import client_token, login, make_member
from tests.sessions.helpers import DEVICE, SHOP, Published, mint, publish

DASHBOARD = "https://kithost.example.com"
VISITORS = "https://chat.example.net"


async def visitor_host_app(
    settings: Settings, connection: AsyncConnection, visitor_url: str | None
) -> tuple[FastAPI, Published]:
    app = create_test_app(settings, connection, public_url=DASHBOARD, visitor_url=visitor_url)
    async with operator_sessions(app)() as setup:
        target = await publish(setup)
        await setup.commit()
    return app, target


async def test_the_visitor_host_is_kithosts_own_origin(
    settings: Settings, connection: AsyncConnection
) -> None:
    app, target = await visitor_host_app(settings, connection, VISITORS + "/")
    key = target.widget.public_key
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        for origin in (VISITORS, DASHBOARD, SHOP):  # the framed page reports its embedder
            minted = await mint(client, target, {"device_id": DEVICE, "embedder": SHOP}, origin)
            assert minted.status_code == 200, (origin, minted.text)
            assert minted.json()["chatkit_url"] == f"{VISITORS}/v1/chatkit/{key}"
            events = await client.post(
                f"/v1/embed/{key}/events", json={"events": []}, headers={"Origin": origin}
            )
            assert events.headers.get("access-control-allow-origin") == origin, origin
        refused = await mint(client, target, {"device_id": DEVICE}, origin="https://evil.test")
        assert (refused.status_code, refused.json()["code"]) == (403, "origin_not_allowed")

        async with operator_sessions(app)() as setup:
            minter = await client_token(app, setup, target.tenant, [Scope.sessions_mint])
            await setup.commit()
        backend = await client.post(
            f"/api/v1/tenants/{target.tenant.slug}/widgets/{target.widget.id}/sessions",
            json={"user": "42"},
            headers=minter.headers,
        )
        assert backend.status_code == 200, backend.text
        claims = pyjwt.decode(backend.json()["token"], options={"verify_signature": False})
        assert claims["origin"] == VISITORS  # the framed page's, where visitors load it


async def test_without_one_only_the_public_url_is_kithosts_own(
    settings: Settings, connection: AsyncConnection
) -> None:
    app, target = await visitor_host_app(settings, connection, None)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        own = await mint(client, target, {"device_id": DEVICE, "embedder": SHOP}, DASHBOARD)
        assert own.status_code == 200, own.text
        key = target.widget.public_key
        assert own.json()["chatkit_url"] == f"{DASHBOARD}/v1/chatkit/{key}"
        other = await mint(client, target, {"device_id": DEVICE}, origin=VISITORS)
        assert (other.status_code, other.json()["code"]) == (403, "origin_not_allowed")


async def test_the_dashboard_learns_where_snippets_point(
    settings: Settings, connection: AsyncConnection
) -> None:
    for visitor_url, expected in [(VISITORS, VISITORS), (None, DASHBOARD)]:
        app, target = await visitor_host_app(settings, connection, visitor_url)
        async with operator_sessions(app)() as setup:
            owner = await login(app, setup, await make_member(setup, target.tenant, Role.owner))
            await setup.commit()
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
            me = await client.get("/api/v1/auth/me", headers=owner.headers)
        assert me.status_code == 200, me.text
        assert me.json()["visitor_url"] == expected
