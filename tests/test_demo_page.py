"""``/demo``: the demo widget on a product page with the real snippet (and, without an
OpenAI key, the note that the demo model answers); off in production."""

from __future__ import annotations

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.db import session_scope
from kithost.demo import seed_demo
from kithost.settings import Environment, Settings
from tests.conftest import create_test_app


async def test_the_demo_page_embeds_the_demo_widget_with_the_snippet(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    seed = await seed_demo(db, app.state.settings)
    page = await client.get("/demo")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    base = app.state.settings.base_url
    tag = f'<script async src="{base}/embed/{seed.widget_public_key}.js"'
    assert tag in page.text
    assert "&lt;script async src=" in page.text, "the snippet is shown too"
    assert '<link rel="icon" href="data:,">' in page.text, "else a browser asks for /favicon.ico"
    assert "No OpenAI API key is set" in page.text
    policy = page.headers["content-security-policy"]
    assert f"script-src 'self' {base}" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


async def test_with_a_key_the_page_says_nothing_of_the_demo_model(
    settings: Settings, connection: AsyncConnection
) -> None:
    app = create_test_app(settings, connection, openai_api_key="sk-platform-key-0123")
    async with session_scope(app.state.sessionmaker) as db:
        await seed_demo(db, settings)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        page = await client.get("/demo")
    assert page.status_code == 200
    assert "No OpenAI API key is set" not in page.text


async def test_in_production_there_is_no_demo_page(
    settings: Settings, connection: AsyncConnection
) -> None:
    app = create_test_app(settings, connection, env=Environment.production)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        page = await client.get("/demo")
    assert (page.status_code, page.json()["code"]) == (404, "demo_page_off")
