"""Every list that pages with ``kit.cursors``, given back a cursor someone tampered with: a
422 on the cursor's parameter, never a 500 from the database comparing the position."""

from __future__ import annotations

import base64
import uuid

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.scopes import Scope
from kithost.kit import cursors
from kithost.models.base import utcnow
from tests.factories import client_token, make_tenant

NOW = "2026-12-05T10:00:00+00:00"


def tampered(time: str, id: str) -> str:
    """A cursor as :func:`kithost.kit.cursors.encode` spells one, naming anything."""
    return base64.urlsafe_b64encode(f"{time} {id}".encode()).decode().rstrip("=")


def refused(id: str) -> list[str]:
    """Cursors naming no position a list gave, beside an ``id`` of the list's type."""
    return [
        tampered(NOW, id + "\x00"),  # PostgreSQL refuses a NUL even to compare: a 500
        tampered(NOW, "\x00"),
        tampered("0001-01-01T00:00:00+01:00", id),  # before the year 1 in UTC
        tampered("9999-12-31T23:59:59-01:00", id),  # after the year 9999 in UTC
        tampered("2026-12-05T10:00:00", id),  # no offset
    ]


async def test_a_tampered_cursor_is_a_422_on_every_list(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db)
    scopes = [
        Scope.members_read,
        Scope.analytics_read,
        Scope.webhooks_write,
        Scope.conversations_read,
    ]
    creds = await client_token(app, db, tenant, scopes)
    tenant_url = f"/api/v1/tenants/{tenant.slug}"
    hook = {"url": "https://hooks.example.com/x", "events": ["client_error.new_group"]}
    created = await client.post(f"{tenant_url}/webhooks", json=hook, headers=creds.headers)
    assert created.status_code == 201, created.text
    endpoint = created.json()["endpoint"]["id"]
    a_uuid = str(uuid.uuid4())
    lists = [
        # (the list, its cursor's parameter, an id of its type)
        (f"{tenant_url}/audit", "cursor", a_uuid),
        (f"{tenant_url}/analytics/errors", "cursor", a_uuid),
        (f"{tenant_url}/webhooks/{endpoint}/deliveries", "cursor", a_uuid),
        (f"{tenant_url}/conversations", "before", "thr_abc"),
    ]
    for url, parameter, id in lists:
        good = cursors.encode(utcnow(), id)
        answer = await client.get(url, params={parameter: good}, headers=creds.headers)
        assert answer.status_code == 200, (url, answer.text)
        wrong_type = [tampered(NOW, "thr_abc")] if id == a_uuid else []
        for cursor in [*refused(id), *wrong_type]:
            answer = await client.get(url, params={parameter: cursor}, headers=creds.headers)
            assert answer.status_code == 422, (url, cursor, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert [e["field"] for e in answer.json()["errors"]] == [parameter]
