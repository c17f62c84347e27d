"""``POST …/widgets/{id}/preview``: the draft through every visitor route, on a short-lived
key, to the dashboard's origin only, never counted in analytics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.analytics.facts import FactBuffer
from kithost.analytics.ingestion.tasks import ingest
from kithost.auth.scopes import Scope
from kithost.kit.headers import page_policy
from kithost.models import Role
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.widgets import preview
from tests.conftest import create_test_app
from tests.factories import client_token, login, make_member, make_tenant
from tests.widgets.helpers import Acme, create, url
from tests.workers import take_sent_tasks

SHOP = "https://shop.example.com"
DEVICE = "anon_" + "d" * 24
DASHBOARD = "http://testserver"
"""Kithost's public URL here: the dashboard's origin, the one a preview is shown on."""


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection) -> FastAPI:
    return create_test_app(settings, connection, public_url=DASHBOARD)


async def published_with_new_draft(client: httpx2.AsyncClient, acme: Acme) -> dict[str, str]:
    """A widget published with the label "Published" whose draft says "Draft"."""
    created = await create(
        client, acme, origins=[SHOP], config={"launcher": {"label": "Published"}}
    )
    published = await client.post(
        url(created, "/publish"), headers=acme.matching(created.headers["etag"])
    )
    assert published.status_code == 200, published.text
    changed = await client.patch(
        url(created),
        json={"config": {"launcher": {"label": "Draft"}}},
        headers=acme.matching(published.headers["etag"]),
    )
    assert changed.status_code == 200, changed.text
    return dict(created.json())


async def make_preview(client: httpx2.AsyncClient, acme: Acme, widget: dict[str, str]) -> str:
    response = await client.post(url(widget, "/preview"), headers=acme.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["url"] == f"/preview/{body['public_key']}"
    return str(body["public_key"])


async def test_a_preview_key_serves_the_draft_to_the_dashboard_origin_only(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = await published_with_new_draft(client, acme)
    key = await make_preview(client, acme, widget)
    assert key.startswith("pv_")

    config = await client.get(f"/v1/embed/{key}/config", headers={"Origin": DASHBOARD})
    assert config.status_code == 200
    assert config.json()["config"]["launcher"]["label"] == "Draft"
    assert config.headers["access-control-allow-origin"] == DASHBOARD
    # The widget's own origins are not the preview's; the published key is unchanged.
    refused = await client.get(f"/v1/embed/{key}/config", headers={"Origin": SHOP})
    assert refused.status_code == 403
    live = await client.get(f"/v1/embed/{widget['public_key']}/config", headers={"Origin": SHOP})
    assert live.json()["config"]["launcher"]["label"] == "Published"

    frame = await client.get(f"/w/{key}")
    assert frame.status_code == 200
    assert frame.headers["content-security-policy"].endswith(f"; frame-ancestors {DASHBOARD}")
    assert "Draft" in frame.text
    page = await client.get(f"/preview/{key}")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == page_policy(
        "script-src 'self'", f"frame-ancestors {DASHBOARD}"
    )
    assert f'src="/embed/{key}.js"' in page.text
    assert (await client.get(f"/embed/{key}.js")).status_code == 200


async def test_the_preview_follows_the_draft_while_it_lives(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = await published_with_new_draft(client, acme)
    key = await make_preview(client, acme, widget)
    current = await client.get(url(widget), headers=acme.headers)
    changed = await client.patch(
        url(widget),
        json={"config": {"launcher": {"label": "Draft two"}}},
        headers=acme.matching(current.headers["etag"]),
    )
    assert changed.status_code == 200
    config = await client.get(f"/v1/embed/{key}/config", headers={"Origin": DASHBOARD})
    assert config.json()["config"]["launcher"]["label"] == "Draft two"


async def test_forged_expired_and_foreign_previews_are_unknown_widgets(
    app: FastAPI, client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = await published_with_new_draft(client, acme)
    key = await make_preview(client, acme, widget)
    settings: Settings = app.state.settings
    claims = preview.read(settings, key, utcnow())
    assert claims is not None
    widened = preview.issue(
        settings,
        claims.__class__(
            claims.tenant_id, claims.widget_id, SHOP, claims.expires_at, claims.made_by
        ),
    )
    forged = widened[: widened.rindex(".")] + key[key.rindex(".") :]
    expired = preview.issue(
        settings,
        preview.Preview(
            claims.tenant_id, claims.widget_id, DASHBOARD, utcnow() - timedelta(1), claims.made_by
        ),
    )
    for bad in (forged, expired, key[:-2], "pv_nonsense", "pv_ä.ö"):
        response = await client.get(f"/v1/embed/{bad}/config", headers={"Origin": DASHBOARD})
        assert response.status_code == 404, bad
        assert response.json()["code"] == "widget_not_found"
        assert (await client.get(f"/preview/{bad}")).status_code == 404
        assert (await client.get(f"/w/{bad}")).status_code == 404


async def test_viewers_and_other_tenants_get_no_preview(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    widget = await published_with_new_draft(client, acme)
    viewer = await login(app, db, await make_member(db, acme.tenant, Role.viewer))
    refused = await client.post(url(widget, "/preview"), headers=viewer.headers)
    assert refused.status_code == 403
    other = await make_tenant(db, "globex")
    globex_owner = await login(app, db, await make_member(db, other, Role.owner))
    foreign = await client.post(
        f"/api/v1/tenants/globex/widgets/{widget['id']}/preview", headers=globex_owner.headers
    )
    assert foreign.status_code == 404


async def test_preview_sessions_and_events_never_count(
    app: FastAPI, client: httpx2.AsyncClient, acme: Acme, settings: Settings
) -> None:
    widget = await published_with_new_draft(client, acme)
    key = await make_preview(client, acme, widget)
    event = {"events": [{"name": "widget.opened", "device_id": DEVICE}]}

    async def visit(pk: str, origin: str) -> None:
        body = {"device_id": DEVICE, "embedder": DASHBOARD}  # the preview page frames the chat
        minted = await client.post(f"/v1/embed/{pk}/session", json=body, headers={"Origin": origin})
        assert minted.status_code == 200, minted.text
        sent = await client.post(f"/v1/embed/{pk}/events", json=event, headers={"Origin": origin})
        assert sent.status_code == 202, sent.text
        await app.state.part(FactBuffer).aclose()

    def counted() -> list[list[Any]]:
        """The ingest tasks for this widget (other tests' may wait in the queue too)."""
        sent = take_sent_tasks(app.state.celery, settings.task_queue, ingest.name)
        return [args for args in sent if args[1] == widget["id"]]

    await visit(key, DASHBOARD)
    assert counted() == []
    await visit(widget["public_key"], SHOP)  # the same visit on the live widget counts
    assert counted() != []


async def test_the_preview_page_gets_its_config_without_an_origin_header(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    """A same-origin GET carries no ``Origin``: only a preview key's own page is answered."""
    widget = await published_with_new_draft(client, acme)
    key = await make_preview(client, acme, widget)
    same_origin = {"Sec-Fetch-Site": "same-origin"}
    config = await client.get(f"/v1/embed/{key}/config", headers=same_origin)
    assert config.status_code == 200
    assert config.json()["config"]["launcher"]["label"] == "Draft"
    cross_site = await client.get(
        f"/v1/embed/{key}/config", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403
    # The live widget does not allow Kithost's own origin (the demo widget does).
    live = await client.get(f"/v1/embed/{widget['public_key']}/config", headers=same_origin)
    assert live.status_code == 403


async def test_a_direct_draft_is_previewed_framed(client: httpx2.AsyncClient, acme: Acme) -> None:
    """ChatKit in the dashboard's own page would need an OpenAI domain key for it."""
    widget = await published_with_new_draft(client, acme)
    current = await client.get(url(widget), headers=acme.headers)
    direct = await client.patch(
        url(widget),
        json={"config": {"placement": "direct"}},
        headers=acme.matching(current.headers["etag"]),
    )
    assert direct.status_code == 200, direct.text
    key = await make_preview(client, acme, widget)
    config = await client.get(f"/v1/embed/{key}/config", headers={"Origin": DASHBOARD})
    assert config.json()["config"]["placement"] == "framed"


async def ending_rights(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession, acme: Acme, ending: str
) -> tuple[dict[str, str], str, dict[str, Any]]:
    """Who may edit acme's widgets until the owner ends it (``ending``), through the API:
    their headers, and the request (method, URL, body) that ends it."""
    if ending == "a client revoked":
        maker = await client_token(app, db, acme.tenant, [Scope.widgets_write])
        clients = await client.get("/api/v1/tenants/acme/clients", headers=acme.headers)
        return (
            maker.headers,
            "DELETE",
            {"url": f"/api/v1/tenants/acme/clients/{clients.json()[0]['id']}"},
        )
    editor = await make_member(db, acme.tenant, Role.editor)
    member = f"/api/v1/tenants/acme/members/{editor.id}"
    headers = (await login(app, db, editor)).headers
    if ending == "removed":
        return headers, "DELETE", {"url": member}
    return headers, "PATCH", {"url": member, "json": {"role": "viewer"}}


@pytest.mark.parametrize("ending", ["removed", "made a viewer", "a client revoked"])
async def test_a_preview_ends_when_its_maker_may_no_longer_edit_the_widget(
    app: FastAPI, client: httpx2.AsyncClient, db: AsyncSession, acme: Acme, ending: str
) -> None:
    """A preview chats with the draft on the tenant's model key: its sessions and chat
    requests end with its maker's right to edit widgets, not 15 minutes later."""
    widget = await published_with_new_draft(client, acme)
    maker, method, end = await ending_rights(app, client, db, acme, ending)
    made = await client.post(url(widget, "/preview"), headers=maker)
    assert made.status_code == 201, made.text
    key = made.json()["public_key"]
    session_url, chat_url = f"/v1/embed/{key}/session", f"/v1/chatkit/{key}"
    dashboard = {"Origin": DASHBOARD}
    new = {"device_id": DEVICE, "embedder": DASHBOARD}  # the preview page frames the chat
    minted = await client.post(session_url, json=new, headers=dashboard)
    assert minted.status_code == 200, minted.text
    token = minted.json()["token"]
    threads = {"type": "threads.list", "params": {}}
    bearer = {**dashboard, "Authorization": f"Bearer {token}"}
    assert (await client.post(chat_url, json=threads, headers=bearer)).status_code == 200

    ended = await client.request(method, headers=acme.headers, **end)
    assert ended.status_code in (200, 204), ended.text
    for response in (
        await client.post(session_url, json=new, headers=dashboard),
        await client.post(session_url, json={"current": token}, headers=dashboard),
        await client.post(chat_url, json=threads, headers=bearer),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "widget_not_found"
        assert response.headers["access-control-allow-origin"] == DASHBOARD

    # The owner's own preview of the same draft is unaffected.
    own = await make_preview(client, acme, widget)
    again = await client.post(f"/v1/embed/{own}/session", json=new, headers=dashboard)
    assert again.status_code == 200, again.text


@pytest.mark.parametrize("host", ["shop.example.com", "evil.example; script-src *"])
async def test_the_preview_is_shown_on_kithost_own_origin_whatever_host_the_request_names(
    app: FastAPI, client: httpx2.AsyncClient, acme: Acme, host: str
) -> None:
    """The only origin a preview admits (and lets frame it) is the dashboard's, from
    ``KITHOST_PUBLIC_URL``: a caller naming another ``Host`` gets no preview on that site."""
    widget = await published_with_new_draft(client, acme)
    made = await client.post(url(widget, "/preview"), headers={**acme.headers, "Host": host})
    assert made.status_code == 201, made.text
    key = made.json()["public_key"]
    claims = preview.read(app.state.settings, key, utcnow())
    assert claims is not None
    assert claims.origin == DASHBOARD
    refused = await client.get(f"/v1/embed/{key}/config", headers={"Origin": SHOP})
    assert refused.status_code == 403
    frame = await client.get(f"/w/{key}")
    assert frame.headers["content-security-policy"].endswith(f"; frame-ancestors {DASHBOARD}")
    page = await client.get(f"/preview/{key}")
    assert page.headers["content-security-policy"].endswith(f"; frame-ancestors {DASHBOARD}")


async def test_the_preview_origin_is_the_public_url_origin_in_its_normal_form(
    settings: Settings, connection: AsyncConnection, acme: Acme
) -> None:
    app = create_test_app(settings, connection, public_url="https://Kithost.Example.com:443/k/")
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="https://kithost.example.com") as c:
        widget = await published_with_new_draft(c, acme)
        key = await make_preview(c, acme, widget)
    claims = preview.read(settings, key, utcnow())
    assert claims is not None
    assert claims.origin == "https://kithost.example.com"


async def test_a_key_naming_no_browser_origin_serves_nothing(
    app: FastAPI, client: httpx2.AsyncClient, acme: Acme
) -> None:
    """A key made while the origin came from the request's ``Host`` (for 15 minutes after
    an upgrade) cannot write what it holds into a policy."""
    widget = await published_with_new_draft(client, acme)
    claims = preview.read(app.state.settings, await make_preview(client, acme, widget), utcnow())
    assert claims is not None
    injected = "http://evil.example; script-src *"
    key = preview.issue(
        app.state.settings,
        preview.Preview(
            claims.tenant_id, claims.widget_id, injected, claims.expires_at, claims.made_by
        ),
    )
    assert (await client.get(f"/w/{key}")).status_code == 404
    config = await client.get(f"/v1/embed/{key}/config", headers={"Origin": "http://evil.example"})
    assert config.status_code == 404
