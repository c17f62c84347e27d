"""The dashboard's page in real Chromium against ``kithost serve`` (the session's, on SQLite)
logs no error and sends no request that fails on a normal visit: signed out on the sign-in
page, and signed in on the Conversations, Analytics and Errors screens; the Conversations
screen's End user filter asks the server once typing stops, not per keystroke.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Page, Request, Response, expect

from kithost.analytics.latency import histogram
from kithost.auth.principals import CLI
from kithost.db import session_scope
from kithost.models import AnalyticsRollup, ErrorGroup, RollupPeriod
from kithost.models.base import utcnow
from kithost.tenants.service import create_tenant
from kithost.users.service import create_user
from kithost.widgets.service import create_widget, publish_draft
from tests.browser.conftest import Kithost
from tests.browser.test_dashboard_screens import PASSWORD, Tenant, open_screen, sign_in
from tests.conversations.helpers import conversation

END_USERS = ("u:customer01", "u:customer02", "u:visitor-77")
"""End users of 12 characters, each with one conversation."""


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


@pytest.fixture
async def tenant(kithost: Kithost) -> Tenant:
    """A new tenant: its owner, a published widget, one conversation per end user, an hour
    of analytics and an error group."""
    slug = f"con-{secrets.token_hex(4)}"
    owner = f"owner-{slug}@example.test"
    async with session_scope(kithost.sessionmaker) as db:
        made = await create_user(db, CLI, owner, password=PASSWORD)
        tenant = await create_tenant(db, CLI, slug=slug, name="Console", owner=made.user)
        widget = await create_widget(
            db, CLI, tenant, name="Shop", origins=["https://shop.example.test"]
        )
        await publish_draft(db, CLI, widget, published_by=None)
        threads = [
            await conversation(
                db, widget, user, [f"Question {n} from {user}", "Answer"], feedback="positive"
            )
            for n, user in enumerate(END_USERS)
        ]
        now = utcnow()
        hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        latency = histogram([420, 900, 1300])
        # The same hour as the rollup keeps it: alone, and as its UTC day.
        db.add_all(
            [
                AnalyticsRollup(
                    tenant_id=tenant.id,
                    period=period,
                    start=hour if period is RollupPeriod.hour else hour.replace(hour=0),
                    widget_id=widget.id,
                    loads=9,
                    opens=5,
                    sessions=4,
                    threads=3,
                    messages=6,
                    responses=3,
                    tokens_in=300,
                    tokens_out=120,
                    feedback_up=3,
                    client_errors=1,
                    first_token_ms=latency,
                    total_ms=latency,
                )
                for period in RollupPeriod
            ]
            + [
                ErrorGroup(
                    tenant_id=tenant.id,
                    widget_id=widget.id,
                    fingerprint=secrets.token_hex(32),
                    kind="network",
                    message="Failed to fetch",
                    hint="Check the allowed origins.",
                    sample={"message": "Failed to fetch"},
                    first_seen=now,
                    last_seen=now,
                    count=1,
                ),
            ]
        )
    return Tenant(kithost.url, slug, owner, owner, threads)


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
