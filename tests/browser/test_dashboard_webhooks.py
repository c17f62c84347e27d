"""The Webhooks screen of a failing or slow endpoint, in real Chromium against ``kithost serve``
(the session's, on SQLite): beside "failing since" it shows when the next delivery is attempted,
and "Send a test" is described as tried at once; beside "slow since", that one delivery goes at
a time and, while an attempt holds the endpoint, until when, or that it waits its turn while an
attempt to another slow endpoint is under way; the screen still passes axe-core.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from playwright.async_api import Page, expect

from kithost.db import session_scope
from kithost.models import WebhookEndpoint, WebhookTenantSlot
from kithost.models.base import utcnow
from kithost.webhooks.delivery import CLAIM
from tests.browser.conftest import Kithost
from tests.browser.helpers import Tenant, open_screen, owner_api, page, sign_in, tenant, violations

__all__ = ["page", "tenant"]  # the fixtures: axe-core's page, a tenant with an owner


async def add_endpoint(tenant: Tenant, url: str) -> uuid.UUID:
    """A new endpoint of ``tenant``'s at ``url``, made through the API."""
    async with owner_api(tenant) as api:
        body = {"url": url, "events": ["widget.published"]}
        made = await api.post(f"/api/v1/tenants/{tenant.slug}/webhooks", json=body)
        assert made.status_code == 201, made.text
    return uuid.UUID(made.json()["endpoint"]["id"])


async def shown(page: Page, when: datetime) -> str:
    """``when`` as the screen's formatDate writes it, in the browser's locale and time zone."""
    written: str = await page.evaluate(
        """(value) => new Date(value).toLocaleString(undefined,
            { dateStyle: 'medium', timeStyle: 'short' })""",
        when.isoformat(),
    )
    return written


async def test_a_failing_endpoint_shows_its_next_try_and_that_a_test_goes_at_once(
    page: Page, tenant: Tenant, kithost: Kithost
) -> None:
    """The screen showed "failing since …" but not when the next attempt is, nor that a test
    skips the rest (nor, once sent, the next try it moved)."""
    endpoint_id = await add_endpoint(tenant, "https://hooks.example.test/kithost")
    now = utcnow()
    next_try = now + timedelta(minutes=20)
    async with session_scope(kithost.sessionmaker) as db:
        endpoint = await db.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        endpoint.failing_since, endpoint.next_attempt_at = now - timedelta(minutes=20), next_try
    await sign_in(page, tenant)
    await open_screen(page, tenant, "webhooks", "Webhooks")
    written = await shown(page, next_try)
    await expect(page.get_by_text(f"next try {written}", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Send a test")).to_have_accessible_description(
        "While it fails, one delivery at a time is attempted, each after a rest; "
        "a test or a replay is tried at once."
    )
    found = await violations(page, "webhooks with a failing endpoint")
    assert found == [], "\n".join(found)
    # A test is tried at once: the next try the screen shows moves to now.
    await page.get_by_role("button", name="Send a test").click()
    await expect(page.get_by_text(f"next try {written}", exact=True)).to_have_count(0)
    await expect(page.get_by_text(re.compile("^next try "))).to_be_visible()


async def test_a_slow_endpoint_shows_since_when_and_that_one_delivery_goes_at_a_time(
    page: Page, tenant: Tenant, kithost: Kithost
) -> None:
    """The screen showed nothing of ``slow_since``: not that the endpoint is slow, nor that its
    deliveries wait their turn, nor until when the attempt under way holds it; nor, for
    another slow endpoint, that it waits for that attempt (``waiting_turn``). A hold that has
    ended (its attempt gone without ending it) is no next try."""
    held = await add_endpoint(tenant, "https://hooks.example.test/held")
    free = await add_endpoint(tenant, "https://hooks.example.test/free")
    await sign_in(page, tenant)
    now = utcnow()
    # A hold further off than any attempt takes (CLAIM): the screen shows it whatever it is,
    # and a slow run of this test cannot see it pass.
    slow_since, hold = now - timedelta(minutes=5), now + timedelta(minutes=20)
    async with session_scope(kithost.sessionmaker) as db:
        for endpoint_id, next_attempt_at in ((held, hold), (free, now - CLAIM)):
            endpoint = await db.get(WebhookEndpoint, endpoint_id)
            assert endpoint is not None
            endpoint.slow_since, endpoint.next_attempt_at = slow_since, next_attempt_at
            if endpoint_id == held:  # its attempt holds the tenant's slot for slow ones too
                db.add(WebhookTenantSlot(tenant_id=endpoint.tenant_id, held_until=hold))
    await open_screen(page, tenant, "webhooks", "Webhooks")
    for url in ("held", "free"):
        card = page.get_by_role("listitem").filter(has_text=f"https://hooks.example.test/{url}")
        await expect(
            card.get_by_text(f"slow since {await shown(page, slow_since)}", exact=True)
        ).to_be_visible()
        await expect(
            card.get_by_text(
                "While it answers slowly (over 2 s), one delivery at a time is attempted, the next "
                "within seconds of the one under way ending; the others wait their turn. Your "
                "slow endpoints take one delivery at a time all together: while another one's is "
                "under way, this one is waiting its turn.",
                exact=True,
            )
        ).to_be_visible()
        # Not the failing endpoint's rest: a test waits its turn too.
        await expect(card.get_by_role("button", name="Send a test")).to_have_accessible_description(
            ""
        )
    held_card = page.get_by_role("listitem").filter(has_text="https://hooks.example.test/held")
    await expect(
        held_card.get_by_text(f"next try {await shown(page, hold)}", exact=True)
    ).to_be_visible()
    await expect(page.get_by_text(re.compile("^next try "))).to_have_count(1)
    free_card = page.get_by_role("listitem").filter(has_text="https://hooks.example.test/free")
    await expect(free_card.get_by_text("waiting its turn", exact=True)).to_be_visible()
    await expect(page.get_by_text("waiting its turn", exact=True)).to_have_count(1)
    found = await violations(page, "webhooks with a slow endpoint")
    assert found == [], "\n".join(found)
