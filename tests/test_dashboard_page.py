"""``/admin/``: the dashboard's build served with its caching and security headers; ``/``
leads there."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from kithost.dashboard import endpoints


async def test_the_root_and_admin_lead_to_the_dashboard(client: httpx2.AsyncClient) -> None:
    for method in ("GET", "HEAD"):
        for path in ("/", "/admin"):
            response = await client.request(method, path, follow_redirects=False)
            assert (response.status_code, response.headers["location"]) == (307, "/admin/")
    page = await client.head("/admin/")  # as uptime checks ask
    assert (page.status_code, page.content) == (200, b"")
    assert page.headers["content-type"].startswith("text/html")


async def test_every_client_route_is_the_page_with_a_strict_policy(
    client: httpx2.AsyncClient,
) -> None:
    for path in ("/admin/", "/admin/sign-in", "/admin/t/acme/widgets/123/design"):
        page = await client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "frame-ancestors 'none'" in policy
        assert '<div id="root">' in page.text


async def test_hashed_assets_are_immutable_and_nothing_else_is_served(
    client: httpx2.AsyncClient,
) -> None:
    page = await client.get("/admin/")
    [script] = [part.split('"')[0] for part in page.text.split('src="/admin/')[1:]]
    assert script.startswith("assets/")
    asset = await client.get(f"/admin/{script}")
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in asset.headers["content-type"]
    for missing in ("/admin/assets/nope.js", "/admin/assets/..%2F..%2Fendpoints.py"):
        response = await client.get(missing)
        assert (response.status_code, response.json()["code"]) == (404, "asset_not_found")


async def test_without_a_build_the_page_says_how_to_make_one(
    client: httpx2.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoints, "DIST", tmp_path)
    response = await client.get("/admin/")
    assert (response.status_code, response.json()["code"]) == (503, "dashboard_not_built")
