"""A client error the chat reports (framed or direct) reaches the tenant's errors API."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx2
import pytest
from playwright.async_api import BrowserContext

from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.clients.service import NewClient, create_client
from kithost.db import session_scope
from kithost.models import Placement, Tenant
from kithost.settings import Settings
from kithost.widgets.config import WidgetConfig
from tests.auth.helpers import GRANT, TOKEN_URL, basic
from tests.browser.conftest import Kithost
from tests.browser.helpers import UNAVAILABLE, Captured, Site, eventually, snippet
from tests.visitor.helpers import make_widget
from tests.workers import until, worker_running


@pytest.fixture
def worker(browser_settings: Settings, kithost: Kithost) -> Iterator[None]:
    """A worker for the browser tests' ``kithost serve``: its database, and the broker and
    queue it sends to (the default ones, in its data directory)."""
    served = browser_settings.model_copy(update={"broker_url": None, "task_queue": "kithost"})
    with worker_running(served):
        yield


async def test_a_refused_session_reaches_the_errors_api_framed_and_direct(
    context: BrowserContext, kithost: Kithost, shop: Site, captured: Captured, worker: None
) -> None:
    refused = WidgetConfig(require_identity=True)  # the page never calls identify
    async with session_scope(kithost.sessionmaker) as db:
        framed = await make_widget(db, [shop.origin], refused)
        direct = await make_widget(
            db,
            [(shop.origin, "domain_pk_shop")],
            refused.model_copy(update={"placement": Placement.direct}),
        )
        tenants = [await db.get_one(Tenant, w.tenant_id) for w in (framed, direct)]
        clients = [
            await create_client(db, CLI, tenant, name="errors", scopes=[Scope.analytics_read])
            for tenant in tenants
        ]
        keys = [framed.public_key, direct.public_key]
        widget_ids = [str(framed.id), str(direct.id)]
        slugs = [tenant.slug for tenant in tenants]

    for pk in keys:
        page = await context.new_page()
        container = '<section id="chat" style="height:500px" aria-label="Chat"></section>'
        await page.goto(shop.page(container + snippet(kithost.url, pk, container="#chat")))
        [error] = await eventually(partial(captured.errors, pk), "a client error")
        assert error["kind"] == "session_refused"
        assert "frame" not in error  # a stack frame's place: the chat has none to give
        answers = [b.answer for b in captured.batches if b.public_key == pk]
        assert all(answer["dropped"] == [] for answer in answers), answers
        alert = page.get_by_role("alert")
        if pk == framed.public_key:
            alert = page.frame_locator(f'iframe[src*="/w/{pk}#"]').get_by_role("alert")
        assert await alert.inner_text() == f"{UNAVAILABLE} Try again"

    for new, slug, widget_id in zip(clients, slugs, widget_ids, strict=True):
        [group] = await error_groups(kithost, new, slug)
        assert group["widget_id"] == widget_id
        assert group["kind"] == "session_refused"
        assert "identity_required: This widget needs an identity token" in group["message"]
        assert "identify" in group["hint"]
        assert group["frame"] is None


async def error_groups(kithost: Kithost, api_client: NewClient, slug: str) -> list[dict[str, Any]]:
    """The tenant's error groups through its API, once the worker has recorded any."""
    async with httpx2.AsyncClient(base_url=kithost.url) as client:
        credentials = basic(api_client.client.client_id, api_client.secret)
        token = await client.post(TOKEN_URL, data=GRANT, headers=credentials)
        assert token.status_code == 200, token.text
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        groups: list[dict[str, Any]] = []

        async def recorded() -> bool:
            listed = await client.get(f"/api/v1/tenants/{slug}/analytics/errors", headers=bearer)
            assert listed.status_code == 200, listed.text
            groups[:] = listed.json()["groups"]
            return bool(groups)

        await until(recorded)
        return groups
