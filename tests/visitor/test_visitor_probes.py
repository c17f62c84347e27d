"""Visitor routes probed as an attacker or a careless client would call them: what they
answer is a problem the page can read (the admitted origin's CORS headers) or a refusal
that tells it nothing, never a 500 and never a network failure for an allowed page."""

from __future__ import annotations

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.db import session_scope
from kithost.models import AllowedOrigin
from tests.conftest import config_cache
from tests.factories import ROTATING_CLIENTS
from tests.proxy import CuttableProxy, through_proxy
from tests.sessions.helpers import DEVICE, SHOP, Published, mint, publish
from tests.visitor.helpers import assert_refused

__all__ = ["through_proxy"]  # the fixture


def assert_readable_problem(response: httpx2.Response, status: int, code: str) -> None:
    """A problem document the allowed page reads (its CORS headers), never cached."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "context",
    [
        b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # past json's recursion limit
        b'{"a":' + b"9" * 5_000 + b"}",  # past Python's digits for an int
    ],
    ids=["deep", "long_number"],
)
async def test_a_session_body_no_parser_reads_is_a_400_the_page_reads(
    client: httpx2.AsyncClient, db: AsyncSession, context: bytes
) -> None:
    target = await publish(db)
    body = b'{"device_id":"' + DEVICE.encode() + b'","context":' + context + b"}"
    response = await client.post(
        target.url, content=body, headers={"Origin": SHOP, "Content-Type": "application/json"}
    )
    assert_readable_problem(response, 400, "bad_request")


async def test_the_database_away_is_a_503_the_page_reads(
    through_proxy: tuple[FastAPI, CuttableProxy],
) -> None:
    """Past the origin check (the widget from the config cache), the session and chat
    routes answer the database's absence with the page's CORS headers: the loader reads
    503 and ``Retry-After`` instead of a network failure."""
    app, proxy = through_proxy
    async with session_scope(app.state.sessionmaker) as db:
        target = await publish(db)
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        minted = await mint(client, target, {"device_id": DEVICE})
        assert minted.status_code == 200, minted.text
        token = minted.json()["token"]
        await proxy.cut()
        refreshed = await mint(client, target, {"current": token})
        chat = await client.post(
            f"/v1/chatkit/{target.widget.public_key}",
            json={"type": "threads.list", "params": {}},
            headers={"Authorization": f"Bearer {token}", "Origin": SHOP},
        )
        await proxy.restore()
    for response in (refreshed, chat):
        assert_readable_problem(response, 503, "database_unavailable")
        assert int(response.headers["retry-after"]) > 0
        assert response.headers["access-control-expose-headers"] == "Retry-After"


@ROTATING_CLIENTS
async def test_a_client_rotating_its_addresses_is_one_client_to_the_mint_limit(
    app: FastAPI, db: AsyncSession, first: str, address: str
) -> None:
    """New anonymous visitors from one client are bounded by ``mint_limit_per_client``
    (each gets a day's ``messages_per_user_per_day``): an IPv6 client counts by its /64,
    which hands it more addresses than any limit could count one by one."""
    target = await publish(db)
    limit = app.state.settings.mint_limit_per_client

    async def mint_from(host: str, device: int) -> httpx2.Response:
        transport = httpx2.ASGITransport(app=app, client=(host, 40000))
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await mint(c, target, {"device_id": f"anon_{device:024d}"})

    assert (await mint_from(first, 0)).status_code == 200
    for n in range(1, limit):
        minted = await mint_from(address.format(n), n)
        assert minted.status_code == 200, minted.text
    refused = await mint_from(address.format(limit), limit)
    assert_readable_problem(refused, 429, "rate_limited")


async def test_a_removed_origin_stops_the_direct_chats_open_there(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    """A page's session (the direct placement: bound to the page's own origin) neither
    refreshes nor chats once its origin is no longer allowed, and the refusals tell the page
    nothing (no CORS headers); another allowed page's session goes on."""
    app.state.add(config_cache(app, revalidate_after=0))  # every request sees the change
    target = await publish(db)
    other = "https://blog.example.org"
    shop = (await mint(client, target, {"device_id": DEVICE})).json()["token"]
    blog = (await mint(client, target, {"device_id": DEVICE}, other)).json()["token"]
    await db.execute(delete(AllowedOrigin).where(AllowedOrigin.origin == SHOP))
    target.widget.name = "chat, without the shop"  # a change of origins touches the widget
    await db.flush()

    for refused in (
        await mint(client, target, {"current": shop}),
        await chat(client, target, shop, SHOP),
    ):
        assert_refused(refused, 403, "origin_not_allowed")
    assert (await mint(client, target, {"current": blog}, other)).status_code == 200
    assert (await chat(client, target, blog, other)).status_code == 200


async def chat(
    client: httpx2.AsyncClient, target: Published, token: str, origin: str
) -> httpx2.Response:
    return await client.post(
        f"/v1/chatkit/{target.widget.public_key}",
        json={"type": "threads.list", "params": {}},
        headers={"Authorization": f"Bearer {token}", "Origin": origin},
    )
