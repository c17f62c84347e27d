"""``/embed.js``, its content-hashed URL, and the framed page ``/w/{pk}``."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.errors import ServiceUnavailable
from kithost.loader import service
from kithost.widgets.config import Launcher, WidgetConfig
from tests.embed.helpers import ORIGIN, make_widget


async def test_the_loader_is_cached_briefly_and_revalidated(client: httpx.AsyncClient) -> None:
    response = await client.get("/embed.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300, stale-while-revalidate=86400"
    assert response.content == service.bundle().embed.body
    etag = response.headers["etag"]

    again = await client.get("/embed.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


async def test_the_loader_is_gzipped_for_clients_that_accept_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/embed.js", headers={"Accept-Encoding": "gzip, br"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.content == service.bundle().embed.body  # httpx decodes
    assert len(service.bundle().embed.gzipped) <= 6000


async def test_the_hashed_loader_is_immutable(client: httpx.AsyncClient) -> None:
    embed = service.bundle().embed
    response = await client.get(f"/embed.{embed.hash}.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content == embed.body
    stale = await client.get("/embed.0123456789ab.js")
    assert stale.status_code == 404
    assert stale.json()["code"] == "script_not_found"


async def test_the_frame_page_is_locked_to_the_allowed_origins(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    config = WidgetConfig(
        chatkit={"locale": "de-DE", "startScreen": {"greeting": "</script><b>hi</b>"}},
        launcher=Launcher(label="Hilfe & Rat"),
    )
    widget = await make_widget(db, [ORIGIN, "https://*.example.org"], config)
    response = await client.get(f"/w/{widget.public_key}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert policy == f"frame-ancestors {ORIGIN} https://*.example.org"
    page = response.text
    assert '<html lang="de-DE">' in page
    assert "<title>Hilfe &amp; Rat</title>" in page
    assert "</script><b>" not in page
    setup = re.search(r'id="kithost-setup">(.*?)</script>', page)
    assert setup is not None
    data = json.loads(setup.group(1))
    assert data["pk"] == widget.public_key
    assert data["config"]["chatkit"]["startScreen"]["greeting"] == "</script><b>hi</b>"
    assert data["domainKey"] == "domain_pk_localhost_dev"
    assert data["timeoutMs"] == 15000
    frame = service.bundle().frame
    assert f'<script src="/w/frame.{frame.hash}.js"></script>' in page
    script = await client.get(f"/w/frame.{frame.hash}.js")
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert gzip.decompress(frame.gzipped) == script.content


async def test_an_unknown_or_unpublished_widget_gets_an_error_page(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    unpublished = await make_widget(db, config=None)
    for key in ("pk_nope", unpublished.public_key):
        response = await client.get(f"/w/{key}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        assert "This chat is not available" in response.text
        assert "content-security-policy" not in response.headers


def test_a_missing_build_is_a_clear_503(tmp_path: Path) -> None:
    with pytest.raises(ServiceUnavailable) as raised:
        service.bundle(tmp_path)
    assert raised.value.code == "loader_not_built"
