"""The database going away and coming back, through a proxy the test cuts: visitors' configs
are served from memory, every other route answers 503 ``database_unavailable`` with
``Retry-After`` (never a 500), and the same process recovers once the database is back."""

from __future__ import annotations

import httpx2
from fastapi import FastAPI

from kithost.db import session_scope
from kithost.widgets.config import WidgetConfig
from tests.conftest import config_cache
from tests.proxy import CuttableProxy, through_proxy
from tests.visitor.helpers import ORIGIN, config_url, make_widget

__all__ = ["through_proxy"]  # the fixture


async def test_the_database_going_away_is_a_503_and_the_process_recovers(
    through_proxy: tuple[FastAPI, CuttableProxy],
) -> None:
    app, proxy = through_proxy
    async with session_scope(app.state.sessionmaker) as db:
        widget = await make_widget(db, config=WidgetConfig())
        unseen = await make_widget(db, config=WidgetConfig())
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        login = {"email": "nobody@example.test", "password": "wrong-password-123"}
        assert (await client.post("/api/v1/auth/login", json=login)).status_code == 401
        config = await client.get(config_url(widget), headers={"Origin": ORIGIN})
        assert config.status_code == 200

        await proxy.cut()
        down = await client.post("/api/v1/auth/login", json=login)
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == "application/problem+json"
        assert down.json()["code"] == "database_unavailable"
        assert int(down.headers["retry-after"]) > 0
        cold = await client.get(config_url(unseen), headers={"Origin": ORIGIN})
        assert cold.status_code == 503
        assert cold.json()["code"] == "config_unavailable"

        await proxy.restore()
        assert (await client.post("/api/v1/auth/login", json=login)).status_code == 401
        assert (await client.get(config_url(widget), headers={"Origin": ORIGIN})).is_success


async def test_a_cached_config_is_served_while_the_database_is_away(
    through_proxy: tuple[FastAPI, CuttableProxy],
) -> None:
    app, proxy = through_proxy
    app.state.add(config_cache(app, revalidate_after=0))  # every request checks
    async with session_scope(app.state.sessionmaker) as db:
        widget = await make_widget(db, config=WidgetConfig())
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        first = await client.get(config_url(widget), headers={"Origin": ORIGIN})
        assert first.status_code == 200
        await proxy.cut()
        again = await client.get(config_url(widget), headers={"Origin": ORIGIN})
        assert again.status_code == 200
        assert again.json() == first.json()
