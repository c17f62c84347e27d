"""Security headers: on every response, and on HTML pages without a policy of their own."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx2
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from kithost.kit.headers import SecurityHeadersMiddleware, page_policy
from kithost.models.base import utcnow
from kithost.widgets import preview
from kithost.widgets.config import WidgetConfig
from tests.visitor.helpers import ORIGIN, make_widget


async def test_every_response_says_nosniff_and_a_referrer_policy(
    client: httpx2.AsyncClient,
) -> None:
    for path in ("/healthz", "/api/v1/openapi.json", "/nowhere", "/api/v1/docs"):
        response = await client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin", path


async def test_an_html_page_without_a_policy_of_its_own_gets_the_unframed_one() -> None:
    async def page(_request: Request) -> HTMLResponse:
        return HTMLResponse("<p>hi</p>")

    app = SecurityHeadersMiddleware(Starlette(routes=[Route("/", page)]))
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.get("/")
    assert response.headers["content-security-policy"] == page_policy("frame-ancestors 'none'")


async def test_the_framed_page_says_by_whom(client: httpx2.AsyncClient, db: AsyncSession) -> None:
    widget = await make_widget(db, config=WidgetConfig())
    page = await client.get(f"/w/{widget.public_key}")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert policy.endswith(f"; frame-ancestors {ORIGIN}")
    assert policy.count("frame-ancestors") == 1


async def test_every_html_page_has_a_policy_against_plugins_base_and_framing(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    """Every GET route is asked, with its path filled so that it answers a page where it can:
    whatever answers HTML has nosniff, a referrer policy and a CSP that forbids plugins and
    ``<base>``, says who may frame it, and runs no inline script."""
    widget = await make_widget(db, config=WidgetConfig())
    key = preview.issue(
        app.state.settings,
        preview.Preview(widget.tenant_id, widget.id, ORIGIN, utcnow() + timedelta(minutes=5)),
    )
    fill = {"pk": widget.public_key, "key": key}
    pages: set[str] = set()
    for route in iter_route_contexts(app.routes):
        if route.path is None or "GET" not in (route.methods or ()):
            continue
        path = re.sub(r"{(\w+)(?::path)?}", lambda m: fill.get(m[1], "x"), route.path)
        response = await client.get(path)
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        pages.add(route.path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin", path
        policy = [d.strip() for d in response.headers["content-security-policy"].split(";")]
        assert policy[:2] == ["object-src 'none'", "base-uri 'none'"], path
        assert sum(d.startswith("frame-ancestors ") for d in policy) == 1, path
        scripts = [d for d in policy if d.startswith(("script-src ", "default-src "))]
        if "<script" in response.text.replace('<script type="application/json"', ""):
            assert scripts, path
        assert not any("'unsafe-inline'" in d or "'unsafe-eval'" in d for d in scripts), path
    assert {"/w/{pk}", "/preview/{key}", "/api/v1/docs"} <= pages
