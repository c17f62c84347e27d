"""The dashboard's screens other than the widget editor, in real Chromium against ``kithost
serve`` (the session's, on SQLite): what a problem the server names shows, which actions ask
first, what a viewer may not touch, deleting a conversation and who reads them, and what a
reload keeps.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest
from playwright.async_api import BrowserContext, Page, Route, expect

from kithost.auth.principals import CLI
from kithost.db import session_scope
from kithost.models import Membership, Role
from kithost.tenants.service import create_tenant
from kithost.users.service import create_user
from kithost.widgets.service import create_widget
from tests.browser.conftest import Kithost
from tests.conversations.helpers import conversation

PASSWORD = "a long dashboard password"


@dataclass(frozen=True)
class Tenant:
    """A tenant of the test's own on the session's Kithost, with an owner and a viewer."""

    url: str
    slug: str
    owner: str
    viewer: str
    threads: list[str]

    def admin(self, path: str) -> str:
        return f"{self.url}/admin/t/{self.slug}/{path}"


@pytest.fixture
async def tenant(kithost: Kithost) -> Tenant:
    """A new tenant (owner, viewer, a widget and three conversations), so tests share nothing."""
    slug = f"scr-{secrets.token_hex(4)}"
    owner, viewer = f"owner-{slug}@example.test", f"viewer-{slug}@example.test"
    async with session_scope(kithost.sessionmaker) as db:
        made = await create_user(db, CLI, owner, password=PASSWORD)
        tenant = await create_tenant(db, CLI, slug=slug, name="Screens", owner=made.user)
        looker = await create_user(db, CLI, viewer, password=PASSWORD)
        db.add(Membership(tenant_id=tenant.id, user_id=looker.user.id, role=Role.viewer))
        widget = await create_widget(db, CLI, tenant, name="Shop")
        threads = [
            await conversation(
                db, widget, f"u:{n}", [f"Question {n} about tents", "Answer"], hours_ago=n
            )
            for n in range(3)
        ]
    return Tenant(kithost.url, slug, owner, viewer, threads)


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """The dashboard's page: no script error while the test runs."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert errors == []


async def sign_in(page: Page, tenant: Tenant, email: str | None = None) -> None:
    await page.goto(tenant.url + "/admin/sign-in")
    await page.get_by_label("Email").fill(email or tenant.owner)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Widgets")).to_be_visible()


async def open_screen(page: Page, tenant: Tenant, path: str, heading: str) -> None:
    await page.goto(tenant.admin(path))
    await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()


async def owner_api(tenant: Tenant) -> httpx2.AsyncClient:
    """An HTTP client signed in as the owner, sending the CSRF token on writes."""
    client = httpx2.AsyncClient(base_url=tenant.url)
    signed_in = await client.post(
        "/api/v1/auth/login", json={"email": tenant.owner, "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
    client.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
    return client


# Item: a problem whose field the form does not show is shown all the same.


async def test_a_webhook_without_events_says_why_it_is_refused(page: Page, tenant: Tenant) -> None:
    """The API names `events`, which no Field showed, and the form hid every field error."""
    await sign_in(page, tenant)
    await open_screen(page, tenant, "webhooks", "Webhooks")
    await page.get_by_label("URL").fill("https://hooks.example.com/kithost")
    events = page.get_by_role("group", name="Events")
    for box in await events.get_by_role("checkbox").all():
        await box.uncheck()
    await page.get_by_role("button", name="Add endpoint").click()
    await expect(events.get_by_role("alert")).not_to_be_empty()
    await expect(page.get_by_test_id("secret")).to_have_count(0)


async def test_the_alert_lists_the_field_errors_no_field_shows(page: Page, tenant: Tenant) -> None:
    """A 422 naming a field the form has not (here, answered by a stand-in for a newer API)
    is listed in the alert; one naming a field it has is shown beside that field only."""
    await sign_in(page, tenant)
    await open_screen(page, tenant, "clients", "API clients")
    problem = {
        "type": "about:blank",
        "title": "Unprocessable Content",
        "status": 422,
        "code": "validation_failed",
        "detail": "The request is not valid.",
        "errors": [
            {"field": "body.name", "message": "Name taken."},
            {"field": "body.expires_in", "message": "At most 90 days."},
        ],
    }

    async def refuse(route: Route) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        await route.fulfill(
            status=422, content_type="application/problem+json", body=json.dumps(problem)
        )

    await page.route(f"**/api/v1/tenants/{tenant.slug}/clients", refuse)
    await page.get_by_label("Name").fill("Backend")
    await page.get_by_role("button", name="Create client").click()
    alert = page.locator(".alert")
    await expect(alert).to_contain_text("body.expires_in: At most 90 days.")
    await expect(alert).not_to_contain_text("Name taken.")
    await expect(page.locator(".field.invalid")).to_contain_text("Name taken.")
