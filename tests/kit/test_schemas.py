"""Text input with a NUL character (PostgreSQL refuses it) is a 422 naming the field, and so
is a name people read holding characters that reorder or hide it."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Role
from tests.factories import login, make_member, make_tenant


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Shop\x00chat"}, "name"),
        ({"name": "Shop chat", "origins": ["https://shop.example.com\x00"]}, "origins"),
        ({"name": "Shop chat", "config": {"chatkit": {"theme": {"x\x00": 1}}}}, "config"),
    ],
)
async def test_nul_in_any_text_field_is_a_422_naming_it(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, body: dict[str, Any], field: str
) -> None:
    tenant = await make_tenant(db)
    owner = await make_member(db, tenant, Role.owner)
    headers = (await login(app, db, owner)).headers
    response = await client.post(
        f"/api/v1/tenants/{tenant.slug}/widgets", json=body, headers=headers
    )
    assert (response.status_code, response.json()["code"]) == (422, "validation_failed")
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert (error["field"], error["type"]) == (field, "nul_character")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("widgets", {"name": "Support\u202e tahc"}),
        ("clients", {"name": "back\u200bend", "scopes": ["widgets:read"]}),
        ("knowledge-bases", {"name": "FAQ\u2066"}),
    ],
)
async def test_a_name_with_invisible_characters_is_a_422_naming_it(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, path: str, body: dict[str, Any]
) -> None:
    tenant = await make_tenant(db)
    owner = await make_member(db, tenant, Role.owner)
    headers = (await login(app, db, owner)).headers
    response = await client.post(
        f"/api/v1/tenants/{tenant.slug}/{path}", json=body, headers=headers
    )
    assert (response.status_code, response.json()["code"]) == (422, "validation_failed")
    [error] = response.json()["errors"]
    assert (error["field"], error["type"]) == ("name", "invisible_character")
