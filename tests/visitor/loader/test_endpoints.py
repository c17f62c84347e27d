"""``/embed/{pk}.js``, ``/embed.js``, the content-hashed scripts, and the framed page."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.errors import ServiceUnavailable
from kithost.kit.headers import page_policy
from kithost.models import AllowedOrigin, Placement
from kithost.visitor.loader import service
from kithost.widgets.config import Launcher, WidgetConfig
from tests.conftest import config_cache
from tests.visitor.helpers import ORIGIN, Clock, make_widget, publish


async def test_a_widget_loader_carries_the_launcher_look_and_nothing_else(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    config = WidgetConfig(
        chatkit={"startScreen": {"greeting": "Secret greeting"}},
        launcher=Launcher(label="</script>Help & more"),
        placement=Placement.direct,
    )
    widget = await make_widget(db, [(ORIGIN, "domain_pk_secret")], config)
    url = f"/embed/{widget.public_key}.js"
    response = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=300"
    prelude, loader = response.content.split(b"\n", 1)
    assert loader == service.bundle().embed.body
    preset = re.fullmatch(rb".*s\.dataset\.widget=(.*?);s\.kithostPreset=(.*)}}\)\(.*", prelude)
    assert preset is not None
    assert json.loads(preset.group(1)) == widget.public_key
    assert json.loads(preset.group(2)) == {
        "launcher": config.public()["launcher"],
        "placement": "direct",
    }
    assert b"</script>" not in prelude
    for secret in (b"Secret greeting", b"domain_pk_secret", b"actions"):
        assert secret not in response.content
    # A script tag sends no dependable Origin: every page gets the same bytes.
    foreign = await client.get(url, headers={"Origin": "https://evil.example"})
    assert foreign.content == response.content
    assert foreign.headers["vary"] == "Accept-Encoding"
    again = await client.get(url, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


async def test_a_republished_launcher_changes_the_widget_loader(
    client: httpx2.AsyncClient, db: AsyncSession, app: FastAPI
) -> None:
    app.state.add(config_cache(app, revalidate_after=0))
    widget = await make_widget(db, config=WidgetConfig(launcher=Launcher(label="One")))
    first = await client.get(f"/embed/{widget.public_key}.js")
    await publish(db, widget, WidgetConfig(launcher=Launcher(label="Two")))
    second = await client.get(
        f"/embed/{widget.public_key}.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert second.status_code == 200
    assert second.headers["etag"] != first.headers["etag"]
    assert b'"label":"Two"' in second.content


async def test_the_loader_is_cached_briefly_and_revalidated(client: httpx2.AsyncClient) -> None:
    response = await client.get("/embed.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300, stale-while-revalidate=86400"
    assert response.content == service.bundle().embed.body
    etag = response.headers["etag"]

    again = await client.get("/embed.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


async def test_the_loader_is_gzipped_for_clients_that_accept_it(client: httpx2.AsyncClient) -> None:
    response = await client.get("/embed.js", headers={"Accept-Encoding": "gzip, br"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.content == service.bundle().embed.body  # httpx2 decodes
    assert len(service.bundle().embed.gzipped) <= 5000


@pytest.mark.parametrize(
    ("name", "path"),
    [("embed", "/embed/loader.{}.js"), ("frame", "/w/frame.{}.js"), ("direct", "/w/direct.{}.js")],
)
async def test_the_hashed_scripts_are_immutable(
    client: httpx2.AsyncClient, name: str, path: str
) -> None:
    """Under ``/embed/`` and ``/w/``, which a visitor host routes (``/embed/{pk}.js`` does not
    take ``/embed/loader.{hash}.js``: the stale hash below is no unknown widget)."""
    script = getattr(service.bundle(), name)
    response = await client.get(path.format(script.hash))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content == script.body
    stale = await client.get(path.format("0123456789ab"))
    assert stale.status_code == 404
    assert stale.json()["code"] == "script_not_found"


async def test_the_frame_page_is_locked_to_the_allowed_origins(
    client: httpx2.AsyncClient, db: AsyncSession
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
    assert policy == page_policy(
        "script-src 'self' https://cdn.platform.openai.com",
        f"frame-ancestors {ORIGIN} https://*.example.org",
    )
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


@pytest.mark.parametrize(
    ("path", "content_type", "says"),
    [
        ("/w/{}", "text/html; charset=utf-8", "This chat is not available"),
        ("/embed/{}.js", "application/problem+json", '"code":"widget_not_found"'),
    ],
)
async def test_an_unknown_or_unpublished_widget_has_no_page_or_loader(
    client: httpx2.AsyncClient, db: AsyncSession, path: str, content_type: str, says: str
) -> None:
    unpublished = await make_widget(db, config=None)
    for key in ("pk_nope", unpublished.public_key):
        response = await client.get(path.format(key))
        assert response.status_code == 404
        assert response.headers["content-type"] == content_type
        assert response.headers["cache-control"] == "no-store"
        assert says in response.text
        if content_type.startswith("text/html"):  # shown in the iframe of any page
            assert response.headers["content-security-policy"] == page_policy(
                "default-src 'none'", "frame-ancestors *"
            )


def test_a_missing_build_is_a_clear_503(tmp_path: Path) -> None:
    with pytest.raises(ServiceUnavailable) as raised:
        service.bundle(tmp_path)
    assert raised.value.code == "loader_not_built"


@pytest.mark.parametrize("path", ["/embed.js", "/embed/{}.js", "/w/{}", "/embed/loader.{hash}.js"])
async def test_head_answers_as_get_without_the_body(
    client: httpx2.AsyncClient, db: AsyncSession, path: str
) -> None:
    """Caches and uptime checks ask with HEAD."""
    widget = await make_widget(db, config=WidgetConfig())
    url = path.format(widget.public_key, hash=service.bundle().embed.hash)
    got = await client.get(url, headers={"Accept-Encoding": "gzip"})

    head = await client.head(url, headers={"Accept-Encoding": "gzip"})

    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "cache-control", "etag"):
        assert head.headers.get(name) == got.headers.get(name), name
    if path == "/w/{}":
        assert head.headers["content-security-policy"] == got.headers["content-security-policy"]
    # revalidated by ETag
    again = await client.head(url, headers={"If-None-Match": got.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    if path == "/embed/{}.js":
        assert (await client.head(path.format("pk_nope"))).status_code == 404


@pytest.mark.parametrize(
    ("origins", "ancestors"),
    [
        ([ORIGIN, "http://[::1]:3000"], f"frame-ancestors {ORIGIN}"),
        (["http://[::1]:3000"], "frame-ancestors 'none'"),
    ],
)
async def test_ipv6_literal_origins_cannot_frame_the_page(
    client: httpx2.AsyncClient, db: AsyncSession, origins: list[str], ancestors: str
) -> None:
    """CSP's host-source grammar has no IPv6 literal: such a source would be dropped by
    browsers, so the policy leaves it out and says what they enforce."""
    widget = await make_widget(db, origins, WidgetConfig())
    response = await client.get(f"/w/{widget.public_key}")
    assert response.headers["content-security-policy"] == page_policy(
        "script-src 'self' https://cdn.platform.openai.com", ancestors
    )


async def test_the_frame_page_is_revalidated_on_every_load_so_a_removed_origin_stops_framing(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    """Browsers may keep the page only to ask again (``no-cache``): its ``frame-ancestors``
    is never older than the config cache's few seconds. A 304 carries the policy too."""
    clock = Clock()
    app.state.add(config_cache(app, revalidate_after=2.0, clock=clock))
    blog = "https://blog.example.com"
    widget = await make_widget(db, [ORIGIN, blog], WidgetConfig())
    url = f"/w/{widget.public_key}"
    first = await client.get(url)
    assert first.headers["cache-control"] == "no-cache"
    policy = first.headers["content-security-policy"]
    assert policy.endswith(f"frame-ancestors {blog} {ORIGIN}")
    unchanged = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["content-security-policy"] == policy
    assert unchanged.headers["cache-control"] == "no-cache"

    await db.execute(delete(AllowedOrigin).where(AllowedOrigin.origin == ORIGIN))
    widget.name = "Renamed, so the revision moves with the origins"
    await db.flush()
    clock.now += 2.1
    changed = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200
    assert changed.headers["content-security-policy"].endswith(f"frame-ancestors {blog}")
    assert changed.headers["etag"] != first.headers["etag"]
