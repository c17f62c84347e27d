"""Allowed origins over REST: normalised, unique, http only where allowed, each change a new
revision of the widget, audited."""

from __future__ import annotations

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.widgets.helpers import Acme, audit_entries, create, url


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("HTTPS://Shop.Example.COM:443/", "https://shop.example.com"),
        ("https://*.Example.com", "https://*.example.com"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://*.bücher.example:8443", "https://*.xn--bcher-kva.example:8443"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ],
)
async def test_origins_are_stored_normalised_and_only_once(
    client: httpx2.AsyncClient, acme: Acme, given: str, stored: str
) -> None:
    origins = url(await create(client, acme), "/origins")
    added = await client.post(origins, json={"origin": given}, headers=acme.headers)
    assert added.status_code == 201, added.text
    assert (added.json()["origin"], added.json()["domain_key"]) == (stored, None)
    again = await client.post(origins, json={"origin": stored}, headers=acme.headers)
    assert (again.status_code, again.json()["code"]) == (409, "origin_exists")
    assert (await client.get(origins, headers=acme.headers)).json() == [added.json()]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("http://shop.example.com", "http:// is only allowed for localhost"),
        ("ftp://shop.example.com", "the scheme must be http or https"),
        ("https://shop.example.com/path", "an origin has no path, query or fragment"),
        ("https://*.com", "a wildcard needs a domain of at least two labels"),
        ("https://shop.*.example.com", "'*' may only stand as the leftmost label"),
        ("https://exa mple.com", "not a valid host name"),
    ],
)
async def test_what_is_not_an_allowed_origin_is_refused(
    client: httpx2.AsyncClient, acme: Acme, given: str, message: str
) -> None:
    origins = url(await create(client, acme), "/origins")
    refused = await client.post(origins, json={"origin": given}, headers=acme.headers)
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert (error["field"], error["type"]) == ("origin", "origin")
    assert error["message"].startswith(message)
    assert (await client.get(origins, headers=acme.headers)).json() == []


async def test_plain_http_beyond_localhost_needs_insecure_origins_allowed(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    created = await create(client, acme)
    widget, origins = url(created), url(created, "/origins")
    body = {"origin": "http://intranet.example:8080"}
    assert (await client.post(origins, json=body, headers=acme.headers)).status_code == 422

    allowed = await client.patch(
        widget, json={"allow_insecure_origins": True}, headers=acme.matching('"1"')
    )
    assert allowed.json()["allow_insecure_origins"] is True
    added = await client.post(origins, json=body, headers=acme.headers)
    assert added.status_code == 201
    local = await client.post(origins, json={"origin": "http://localhost"}, headers=acme.headers)
    assert local.status_code == 201

    etag = (await client.get(widget, headers=acme.headers)).headers["ETag"]
    off = {"allow_insecure_origins": False}
    refused = await client.patch(widget, json=off, headers=acme.matching(etag))
    assert (refused.status_code, refused.json()["code"]) == (409, "insecure_origins_exist")
    assert "http://intranet.example:8080" in refused.json()["detail"]
    assert "localhost" not in refused.json()["detail"]

    removed = await client.delete(f"{origins}/{added.json()['id']}", headers=acme.headers)
    assert removed.status_code == 204
    etag = (await client.get(widget, headers=acme.headers)).headers["ETag"]
    turned_off = await client.patch(widget, json=off, headers=acme.matching(etag))
    assert turned_off.json()["allow_insecure_origins"] is False


async def test_each_origin_change_is_a_new_revision_of_the_widget(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    created = await create(client, acme)
    widget, origins = url(created), url(created, "/origins")

    async def etag() -> str:
        return (await client.get(widget, headers=acme.headers)).headers["ETag"]

    body = {"origin": "https://shop.example.com", "domain_key": "domain_pk_68ee0a1b2c"}
    added = await client.post(origins, json=body, headers=acme.headers)
    assert added.json()["domain_key"] == "domain_pk_68ee0a1b2c"
    assert await etag() == '"2"'
    origin = f"{origins}/{added.json()['id']}"

    changed = await client.patch(origin, json={"domain_key": "domain_pk_new"}, headers=acme.headers)
    assert (changed.status_code, changed.json()["domain_key"]) == (200, "domain_pk_new")
    assert await etag() == '"3"'
    same = await client.patch(origin, json={"domain_key": "domain_pk_new"}, headers=acme.headers)
    assert same.status_code == 200
    assert await etag() == '"3"', "nothing changed"
    cleared = await client.patch(origin, json={"domain_key": None}, headers=acme.headers)
    assert cleared.json()["domain_key"] is None
    assert await etag() == '"4"'
    assert (await client.delete(origin, headers=acme.headers)).status_code == 204
    assert await etag() == '"5"'
    gone = await client.delete(origin, headers=acme.headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "origin_not_found")

    stale = await client.patch(widget, json={"name": "x"}, headers=acme.matching('"1"'))
    assert stale.status_code == 412

    entries = {
        action: [e.data for e in await audit_entries(db, acme.tenant, action)]
        for action in ("widget.origin_added", "widget.origin_updated", "widget.origin_removed")
    }
    origin_id = added.json()["id"]
    assert entries == {
        "widget.origin_added": [
            {
                "origin_id": origin_id,
                "before": {},
                "after": {"origin": "https://shop.example.com", "domain_key": body["domain_key"]},
            }
        ],
        "widget.origin_updated": [
            {
                "origin_id": origin_id,
                "before": {"domain_key": body["domain_key"]},
                "after": {"domain_key": "domain_pk_new"},
            },
            {
                "origin_id": origin_id,
                "before": {"domain_key": "domain_pk_new"},
                "after": {"domain_key": None},
            },
        ],
        "widget.origin_removed": [
            {
                "origin_id": origin_id,
                "before": {"origin": "https://shop.example.com", "domain_key": None},
                "after": {},
            }
        ],
    }


@pytest.mark.parametrize("domain_key", ["", "domain pk", "domain_pk_<script>", "k" * 256])
async def test_a_domain_key_is_a_plain_token(
    client: httpx2.AsyncClient, acme: Acme, domain_key: str
) -> None:
    origins = url(await create(client, acme), "/origins")
    body = {"origin": "https://shop.example.com", "domain_key": domain_key}
    refused = await client.post(origins, json=body, headers=acme.headers)
    assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, "domain_key")


async def test_an_origin_of_another_widget_is_not_found(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    mine = await create(client, acme)
    theirs = await create(client, acme, name="Other", origins=["https://other.example"])
    [origin] = (await client.get(url(theirs, "/origins"), headers=acme.headers)).json()
    for method, body in [("PATCH", {"domain_key": "domain_pk_x"}), ("DELETE", None)]:
        response = await client.request(
            method, url(mine, f"/origins/{origin['id']}"), json=body, headers=acme.headers
        )
        assert (response.status_code, response.json()["code"]) == (404, "origin_not_found")
    assert (await client.get(url(theirs, "/origins"), headers=acme.headers)).json() == [origin]
