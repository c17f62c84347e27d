"""The Webhooks screen of a failing endpoint, in real Chromium against ``kithost serve`` (the
session's, on SQLite): beside "failing since" it shows when the next delivery is attempted,
and "Send a test" is described as tried at once; the screen still passes axe-core.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from playwright.async_api import Page, expect

from kithost.db import session_scope
from kithost.models import WebhookEndpoint
from kithost.models.base import utcnow
from tests.browser import test_dashboard_a11y as a11y
from tests.browser import test_dashboard_screens as screens
from tests.browser.conftest import Kithost

page = a11y.page
"""The dashboard's page with axe-core in it."""
tenant = screens.tenant
"""A tenant of the test's own, with an owner."""


async def test_a_failing_endpoint_shows_its_next_try_and_that_a_test_goes_at_once(
    page: Page, tenant: screens.Tenant, kithost: Kithost
) -> None:
    """The screen showed "failing since …" but not when the next attempt is, nor that a test
    skips the rest (nor, once sent, the next try it moved)."""
    async with screens.owner_api(tenant) as api:
        body = {"url": "https://hooks.example.test/kithost", "events": ["widget.published"]}
        made = await api.post(f"/api/v1/tenants/{tenant.slug}/webhooks", json=body)
        assert made.status_code == 201, made.text
    now = utcnow()
    next_try = now + timedelta(minutes=20)
    async with session_scope(kithost.sessionmaker) as db:
        endpoint = await db.get(WebhookEndpoint, uuid.UUID(made.json()["endpoint"]["id"]))
        assert endpoint is not None
        endpoint.failing_since, endpoint.next_attempt_at = now - timedelta(minutes=20), next_try
    await screens.sign_in(page, tenant)
    await screens.open_screen(page, tenant, "webhooks", "Webhooks")
    # The time as the screen's formatDate writes it, in the browser's locale and time zone.
    shown: str = await page.evaluate(
        """(value) => new Date(value).toLocaleString(undefined,
            { dateStyle: 'medium', timeStyle: 'short' })""",
        next_try.isoformat(),
    )
    await expect(page.get_by_text(f"next try {shown}", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Send a test")).to_have_accessible_description(
        "While it fails, one delivery at a time is attempted, each after a rest; "
        "a test or a replay is tried at once."
    )
    found = await a11y.violations(page, "webhooks with a failing endpoint")
    assert found == [], "\n".join(found)
    # A test is tried at once: the next try the screen shows moves to now.
    await page.get_by_role("button", name="Send a test").click()
    await expect(page.get_by_text(f"next try {shown}", exact=True)).to_have_count(0)
    await expect(page.get_by_text(re.compile("^next try "))).to_be_visible()
