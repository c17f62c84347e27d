"""Malformed ``Origin`` headers on every visitor route: a refusal (403, no CORS headers),
never a 500 (an unclosed IPv6 bracket once crashed the origin check)."""

from __future__ import annotations

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.widgets.config import WidgetConfig
from tests.visitor.helpers import make_widget

BAD_ORIGINS = [
    "https://[abc",
    "https://[::ffff:a.acme.com]",
    "https://[::1",
    "https://shop.example.com:99999",
    "https://shop.example.com:port",
    "https://exa mple.com",
    "https://xn--.com",
    "https://" + "a" * 300 + ".com",
    "null",
    "//shop.example.com",
    "https://",
    "\x7f",
]
ROUTES = [
    ("GET", "/v1/embed/{pk}/config"),
    ("OPTIONS", "/v1/embed/{pk}/config"),
    ("POST", "/v1/embed/{pk}/session"),
    ("OPTIONS", "/v1/embed/{pk}/session"),
    ("POST", "/v1/embed/{pk}/events"),
    ("OPTIONS", "/v1/embed/{pk}/events"),
    ("POST", "/v1/chatkit/{pk}"),
    ("OPTIONS", "/v1/chatkit/{pk}"),
]


@pytest.mark.parametrize("origin", BAD_ORIGINS)
async def test_a_malformed_origin_is_refused_on_every_visitor_route(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, origin: str
) -> None:
    widget = await make_widget(db, config=WidgetConfig())
    for method, path in ROUTES:
        headers = {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Content-Type": "application/json",
        }
        response = await client.request(
            method, path.format(pk=widget.public_key), headers=headers, content=b"{}"
        )
        assert 400 <= response.status_code < 500, (method, path, response.text)
        assert "access-control-allow-origin" not in response.headers, (method, path)
        if response.content:
            assert response.headers["content-type"] == "application/problem+json"
