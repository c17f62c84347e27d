"""A NUL character (U+0000) in a request's URL, which PostgreSQL's text cannot hold: refused
before any route runs, alike on PostgreSQL and SQLite, over a real uvicorn (which decodes the
URL as production does)."""

from __future__ import annotations

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.kit.schemas import NUL_MESSAGE
from kithost.models import Role
from tests.factories import login, make_member, make_tenant, make_user
from tests.visitor.helpers import ORIGIN

NUL_ERROR = {"message": NUL_MESSAGE, "type": "nul_character"}


def assert_problem(response: httpx2.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_a_path_holding_nul_names_nothing(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db)
    owner = (await login(app, db, await make_member(db, tenant, Role.owner))).headers
    tenant_url = f"/api/v1/tenants/{tenant.slug}"
    for path in (
        f"{tenant_url}%00",
        f"{tenant_url}/conversations/th%00r",
        f"{tenant_url}/widgets/%00",
        f"{tenant_url}/clients/%00",
    ):
        assert_problem(await http.get(path, headers=owner), 404, "not_found")
    assert_problem(await http.delete(f"{tenant_url}/clients/%00", headers=owner), 404, "not_found")
    # The visitor routes, public: a key no widget has, not an outage (503) or a bug (500).
    visitor = {"Origin": ORIGIN}
    for method, path in (
        ("GET", "/v1/embed/pk_%00/config"),
        ("GET", "/embed/pk_%00.js"),
        ("GET", "/w/pk_%00"),
        ("POST", "/v1/embed/pk_%00/session"),
        ("POST", "/v1/embed/pk_%00/events"),
        ("POST", "/v1/chatkit/pk_%00"),
    ):
        response = await http.request(method, path, headers=visitor, json={})
        assert_problem(response, 404, "not_found")
        assert "access-control-allow-origin" not in response.headers, path
    # An encoded percent sign is text like any other: "%00" names no tenant either.
    assert_problem(await http.get(f"{tenant_url}%2500", headers=owner), 404, "tenant_not_found")


async def test_a_query_parameter_holding_nul_is_refused_by_name(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db)
    operator = (await login(app, db, await make_user(db, platform_admin=True))).headers
    owner = (await login(app, db, await make_member(db, tenant, Role.owner))).headers

    response = await http.get("/api/v1/tenants?after=%00&limit=5", headers=operator)
    assert_problem(response, 422, "validation_failed")
    assert response.json()["errors"] == [{"field": "after", **NUL_ERROR}]
    # The error a JSON body's field holding one gets.
    body = await http.post(
        f"/api/v1/tenants/{tenant.slug}/widgets", json={"name": "a\x00"}, headers=owner
    )
    assert body.json()["errors"] == [{"field": "name", **NUL_ERROR}]

    # Each parameter holding one, in its value or its name, raw or encoded; on any route.
    response = await http.get(
        f"/api/v1/tenants/{tenant.slug}/conversations?q=a%00b&x%00=1&q=%00&limit=5",
        headers=owner,
    )
    assert_problem(response, 422, "validation_failed")
    assert response.json()["errors"] == [
        {"field": "q", **NUL_ERROR},
        {"field": "x\x00", **NUL_ERROR},
    ]
    response = await http.get("/v1/embed/pk_unknown/config?v=%00", headers={"Origin": ORIGIN})
    assert_problem(response, 422, "validation_failed")
    assert response.json()["errors"] == [{"field": "v", **NUL_ERROR}]

    # "%2500" is the text "%00": a search like any other.
    found = await http.get("/api/v1/tenants?q=%2500", headers=operator)
    assert (found.status_code, found.json()) == (200, [])
