"""Security headers: on every response, and on HTML pages without a policy of their own."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.widgets.config import WidgetConfig
from tests.embed.helpers import ORIGIN, make_widget


async def test_every_response_says_nosniff_and_a_referrer_policy(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/healthz", "/api/v1/openapi.json", "/nowhere", "/api/v1/docs"):
        response = await client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin", path


async def test_html_pages_are_never_framed_unless_they_say_by_whom(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    docs = await client.get("/api/v1/docs")
    assert docs.headers["content-type"].startswith("text/html")
    assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"

    widget = await make_widget(db, config=WidgetConfig())
    page = await client.get(f"/w/{widget.public_key}")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert f"frame-ancestors {ORIGIN}" in policy
    assert policy.count("frame-ancestors") == 1
