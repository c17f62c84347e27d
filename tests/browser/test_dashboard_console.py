"""The dashboard's page in real Chromium against ``kithost serve`` (the session's, on SQLite)
logs no error and sends no request that fails on a normal visit: signed out on the sign-in
page, and signed in on the Conversations, Analytics and Errors screens; the Conversations
screen's End user filter asks the server once typing stops, not per keystroke.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Page, Request, Response, expect

from tests.browser.conftest import Kithost
from tests.browser.helpers import END_USERS, Tenant, console_tenant, open_screen, sign_in

tenant = console_tenant
"""A tenant of the test's own: its owner, a published widget, one conversation per end user,
an hour of analytics and an error group."""


@dataclass
class Troubles:
    """What went wrong in the page: console errors (a failed request's "Failed to load
    resource" included), script errors, requests without an answer (but those the page
    aborted) and answers >= 400."""

    found: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.found.append(f"console: {message.text} ({message.location.get('url')})")

    def on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.found.append(f"{response.status}: {response.request.method} {response.url}")

    def on_failed(self, request: Request) -> None:
        # Not a request the page cancelled itself: a screen left before its data came (the
        # query client aborts what no screen waits for any more) shows the visitor nothing.
        if request.failure != "net::ERR_ABORTED":
            self.found.append(f"failed ({request.failure}): {request.method} {request.url}")


@pytest.fixture
async def troubles() -> Troubles:
    return Troubles()


@pytest.fixture
async def page(context: BrowserContext, troubles: Troubles) -> Page:
    """The dashboard's page, whose troubles ``troubles`` collects."""
    page = await context.new_page()
    page.on("console", troubles.on_console)
    page.on("pageerror", lambda error: troubles.found.append(f"script: {error}"))
    page.on("response", troubles.on_response)
    page.on("requestfailed", troubles.on_failed)
    return page


async def test_a_signed_out_visitor_opening_the_dashboard_sees_no_console_error(
    page: Page, troubles: Troubles, kithost: Kithost
) -> None:
    """The app asked ``/auth/me``, whose 401 Chromium logs as an error."""
    await page.goto(kithost.url + "/admin/")
    await expect(page.get_by_role("heading", name="Sign in to Kithost")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    await page.goto(kithost.url + "/admin/sign-in")
    await expect(page.get_by_role("heading", name="Sign in to Kithost")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    assert troubles.found == []


async def test_the_end_user_filter_asks_once_typing_stops(
    page: Page, troubles: Troubles, tenant: Tenant
) -> None:
    """Each keystroke sent a list request: twelve for an end user id."""
    await sign_in(page, tenant, tenant.owner)
    await open_screen(page, tenant, "conversations", "Conversations")
    for user in END_USERS:
        await expect(page.get_by_role("cell", name=user, exact=True)).to_be_visible()
    filtered: list[str] = []

    def record(request: Request) -> None:
        path = request.url.split("?")[0]
        if path.endswith(f"/tenants/{tenant.slug}/conversations") and "end_user=" in request.url:
            filtered.append(request.url)

    page.on("request", record)
    await page.get_by_label("End user").press_sequentially(END_USERS[1], delay=40)
    await expect(page.get_by_role("cell", name=END_USERS[1], exact=True)).to_be_visible()
    await expect(page.get_by_role("cell", name=END_USERS[0], exact=True)).to_have_count(0)
    await expect(page.get_by_role("cell", name=END_USERS[2], exact=True)).to_have_count(0)
    await expect(page).to_have_url(f"{tenant.admin('conversations')}?end_user=u%3Acustomer02")
    await page.wait_for_load_state("networkidle")
    assert 1 <= len(filtered) <= 2, filtered
    assert troubles.found == []


async def test_conversations_analytics_and_errors_log_no_error(
    page: Page, troubles: Troubles, tenant: Tenant
) -> None:
    """A transcript opened, the analytics of an hour, an error group's sample: nothing fails."""
    await sign_in(page, tenant, tenant.owner)
    await open_screen(page, tenant, "conversations", "Conversations")
    await page.get_by_role("button", name=f"Question 0 from {END_USERS[0]}"[:20]).click()
    transcript = page.get_by_role("region", name="Transcript")
    await expect(transcript.get_by_text(f"Question 0 from {END_USERS[0]}")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    await open_screen(page, tenant, "analytics", "Analytics")
    await expect(page.locator('[data-metric="loads"]')).to_have_text("9")
    await page.wait_for_load_state("networkidle")
    await open_screen(page, tenant, "errors", "Errors")
    await page.get_by_text("Sample").click()
    await expect(page.get_by_text("How to fix: Check the allowed origins.")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    assert troubles.found == []


async def test_the_filter_checkboxes_take_a_click_at_once(
    page: Page, troubles: Troubles, tenant: Tenant
) -> None:
    """A click on "With an error" flipped back until the URL's navigation committed (Playwright's
    check() saw it not change); the filter applies and nothing is logged."""
    await sign_in(page, tenant, tenant.owner)
    await open_screen(page, tenant, "conversations", "Conversations")
    await expect(page.get_by_role("cell", name=END_USERS[0], exact=True)).to_be_visible()
    for box, key in (("With an error", "has_error"), ("With attachments", "has_attachments")):
        await page.get_by_label(box).check()
        await expect(page).to_have_url(f"{tenant.admin('conversations')}?{key}=1")
        await expect(page.get_by_text("No conversations match.")).to_be_visible()
        await page.get_by_label(box).uncheck()
        await expect(page).to_have_url(tenant.admin("conversations"))
        await expect(page.get_by_role("cell", name=END_USERS[0], exact=True)).to_be_visible()
    assert troubles.found == []
