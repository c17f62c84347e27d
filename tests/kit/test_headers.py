"""Security headers: on every response, and on HTML pages without a policy of their own."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx2
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from kithost.kit.headers import SecurityHeadersMiddleware, page_policy
from kithost.models import Role
from kithost.models.base import utcnow
from kithost.settings import Environment, Settings
from kithost.widgets import preview
from kithost.widgets.config import WidgetConfig
from tests.conftest import create_test_app
from tests.factories import PASSWORD, login, make_member, make_tenant
from tests.visitor.helpers import ORIGIN, make_widget
from tests.widgets.previews import maker


async def test_every_response_says_nosniff_and_a_referrer_policy(
    client: httpx2.AsyncClient,
) -> None:
    for path in ("/healthz", "/api/v1/openapi.json", "/nowhere", "/api/v1/docs"):
        response = await client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin", path


async def test_production_on_https_tells_browsers_to_stay_on_https(
    settings: Settings, connection: AsyncConnection, client: httpx2.AsyncClient
) -> None:
    production = create_test_app(
        settings,
        connection,
        env=Environment.production,
        public_url="https://kithost.example.com",
    )
    transport = httpx2.ASGITransport(app=production, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="https://testserver") as https:
        for path in ("/healthz", "/api/v1/openapi.json", "/admin/", "/nowhere"):
            response = await https.get(path)
            assert response.headers["strict-transport-security"] == "max-age=31536000", path
        login = await https.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "x"})
        assert login.headers["strict-transport-security"] == "max-age=31536000"
    # Development (http://localhost) sends none: it would pin localhost to https.
    assert "strict-transport-security" not in (await client.get("/healthz")).headers


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
        preview.Preview(
            widget.tenant_id, widget.id, ORIGIN, utcnow() + timedelta(minutes=5), await maker(db)
        ),
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


async def test_api_answers_are_never_stored_unless_their_route_says_otherwise(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """Everything under /api/ is a tenant's data, some of it a secret shown once."""
    tenant = await make_tenant(db)
    user = await make_member(db, tenant, Role.owner)
    owner = (await login(app, db, user)).headers
    clients = f"/api/v1/tenants/{tenant.slug}/clients"
    created = await client.post(
        clients, json={"name": "backend", "scopes": ["widgets:read"]}, headers=owner
    )
    assert created.status_code == 201, created.text
    assert "client_secret" in created.json()
    signed_in = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert "csrf_token" in signed_in.json()
    widget = await client.post(
        f"/api/v1/tenants/{tenant.slug}/widgets", json={"name": "Support"}, headers=owner
    )
    assert widget.headers["etag"]  # what If-Match needs stays readable
    answers = [created, signed_in, widget]
    for path in (clients, "/api/v1/auth/me", "/api/v1/nowhere", "/api/v1/openapi.json"):
        answers.append(await client.get(path, headers=owner))
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.url
        assert answer.status_code < 500, answer.url

    # Outside /api/, routes say how they may be cached (or not at all).
    jwks = await client.get("/.well-known/jwks.json")
    assert jwks.headers.get_list("cache-control") == ["public, max-age=300"]
    assert "cache-control" not in (await client.get("/healthz")).headers


async def test_an_api_route_with_a_cache_control_of_its_own_keeps_it() -> None:
    async def cached(_request: Request) -> JSONResponse:
        return JSONResponse({}, headers={"Cache-Control": "private, max-age=60"})

    app = SecurityHeadersMiddleware(Starlette(routes=[Route("/api/v1/cached", cached)]))
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.get("/api/v1/cached")
    assert response.headers.get_list("cache-control") == ["private, max-age=60"]
