"""The dashboard's Conversations screen in real Chromium against ``kithost serve`` (the
session's, on SQLite): paging through older conversations when a page fails, and what a
transcript shows of a visitor's messages (their files; hostile text as text)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from playwright.async_api import BrowserContext, Page, Route, expect
from sqlalchemy import select

from kithost.conversations.service import TRANSCRIPT_PAGE
from kithost.db import session_scope
from kithost.models import ChatItem, Widget
from kithost.models import Tenant as TenantRow
from tests.browser.conftest import Kithost
from tests.browser.helpers import Tenant, open_screen, page, sign_in, tenant
from tests.conversations.helpers import conversation

__all__ = ["page", "tenant"]  # the fixtures

LIST = re.compile(r".*/api/v1/tenants/[^/]+/conversations\?.*")


async def _shop(kithost: Kithost, tenant: Tenant) -> Widget:
    async with session_scope(kithost.sessionmaker) as db:
        widget = await db.scalar(
            select(Widget).join(TenantRow).where(TenantRow.slug == tenant.slug)
        )
        assert widget is not None
        return widget


async def test_an_older_page_that_fails_leaves_the_conversations_shown(
    page: Page, tenant: Tenant, kithost: Kithost
) -> None:
    """The list gave way to the alert: a support agent fifty conversations down lost them
    all when the next page failed, and found them again only by a reload."""
    shop = await _shop(kithost, tenant)
    async with session_scope(kithost.sessionmaker) as db:
        for n in range(50):
            said = [f"Older question {n}", "Answer"]
            await conversation(db, shop, f"u:old{n}", said, hours_ago=5)
    failing = True

    async def older(route: Route) -> None:
        if failing and "before=" in route.request.url:
            problem = {
                "type": "about:blank",
                "title": "Service Unavailable",
                "status": 503,
                "code": "database_unavailable",
                "detail": "The database is unavailable: try again shortly.",
            }
            await route.fulfill(
                status=503, content_type="application/problem+json", body=json.dumps(problem)
            )
        else:
            await route.continue_()

    await page.route(LIST, older)
    await sign_in(page, tenant)
    await open_screen(page, tenant, "conversations", "Conversations")
    more = page.get_by_role("button", name="Older conversations")
    await more.click()
    await expect(page.get_by_role("alert")).to_contain_text("The database is unavailable")
    await expect(page.get_by_role("button", name="Question 0 about ten")).to_be_visible()
    failing = False
    await more.click()
    await expect(page.get_by_role("button", name="Older question 49")).to_be_visible()
    await expect(page.get_by_role("alert")).to_have_count(0)
    await expect(page.get_by_role("button", name="Question 0 about ten")).to_be_visible()


HOSTILE = '<img src=x onerror="window.pwned=1"> **bold** [link](javascript:alert(1))'


async def test_a_transcript_shows_the_files_attached_and_hostile_text_as_text(
    page: Page, tenant: Tenant, kithost: Kithost
) -> None:
    """The transcript showed a message's text only: staff reviewing a conversation the
    list found "with attachments" could not see which message carried which file. What the
    visitor wrote, and their files' names, are text, never markup."""
    shop = await _shop(kithost, tenant)
    async with session_scope(kithost.sessionmaker) as db:
        thread = await conversation(db, shop, "u:files", [HOSTILE, "Got it."], hours_ago=4)
        asked = await db.scalar(
            select(ChatItem).where(ChatItem.thread_id == thread, ChatItem.kind == "user_message")
        )
        assert asked is not None
        files = [
            {
                "type": "file",
                "id": "atc_1",
                "name": "<b>receipt</b>.pdf",
                "mime_type": "application/pdf",
            },
            {"type": "image", "id": "atc_2", "name": "tent.png", "mime_type": "image/png"},
        ]
        asked.payload = {**asked.payload, "attachments": files}
    await sign_in(page, tenant)
    await page.goto(tenant.admin(f"conversations?thread={thread}"))
    transcript = page.get_by_role("region", name="Transcript")
    await expect(transcript.get_by_text(HOSTILE, exact=True)).to_be_visible()
    await expect(transcript.get_by_text("<b>receipt</b>.pdf, tent.png")).to_be_visible()
    await expect(transcript.locator("img, b")).to_have_count(0)
    assert await page.evaluate("() => 'pwned' in window") is False


def _export(status: str, url: str | None, expires: datetime | None) -> dict[str, object]:
    """An export as ``GET …/exports/{id}`` shows it (what a worker made of it)."""
    return {
        "id": EXPORT_ID,
        "format": "jsonl",
        "filters": {},
        "status": status,
        "size_bytes": None if url is None else 1234,
        "created_at": NOW.isoformat(),
        "finished_at": None if url is None else NOW.isoformat(),
        "kept_until": (NOW + timedelta(days=1)).isoformat(),
        "download_url": url,
        "download_expires_at": None if expires is None else expires.isoformat(),
    }


EXPORT_ID = "5f7b5b7e-3f8e-4d0c-9a52-1b3c4d5e6f70"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


async def test_a_ready_exports_link_is_renewed_before_it_expires(
    context: BrowserContext, page: Page, tenant: Tenant
) -> None:
    """The status stopped being asked for once the export was ready, so its link, valid for
    10 minutes, stayed on the screen after it expired: a support agent back later got a
    problem document for a download."""
    await context.clock.install(time=NOW)
    links: list[str] = []

    async def status(route: Route) -> None:
        links.append(f"{tenant.url}/api/v1/conversation-exports/ex_{len(links)}")
        expires = NOW + timedelta(minutes=10 * len(links))
        body = _export("ready", links[-1], expires)
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    async def asked(route: Route) -> None:
        body = _export("pending", None, None)
        await route.fulfill(status=202, content_type="application/json", body=json.dumps(body))

    await page.route(re.compile(rf".*/conversations/exports/{EXPORT_ID}$"), status)
    await page.route(re.compile(r".*/conversations/exports$"), asked)
    await sign_in(page, tenant)
    await open_screen(page, tenant, "conversations", "Conversations")
    await page.get_by_role("button", name="Export in the background").click()
    download = page.get_by_role("link", name="Download the export")
    await expect(download).to_have_attribute("href", re.compile(r"/ex_0$"))
    await context.clock.run_for("10:00")
    await expect(download).to_have_attribute("href", re.compile(r"/ex_1$"))


async def test_filters_the_list_is_refused_for_offer_no_streamed_export(
    page: Page, tenant: Tenant
) -> None:
    """The list said why (here, the pseudonym it shows for an anonymous visitor is no id to
    filter by), while its export links still downloaded the API's problem document as
    ``export.csv``."""
    await sign_in(page, tenant)
    await open_screen(page, tenant, "conversations", "Conversations")
    await page.get_by_label("End user").fill("a:h_" + "0" * 32)
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("how Kithost shows an anonymous")
    for name in ("Export (JSON lines)", "Export messages (CSV)"):
        await expect(page.get_by_role("link", name=name)).to_have_count(0)
        await expect(page.get_by_role("button", name=name)).to_be_disabled()
    await page.get_by_label("End user").fill("u:1")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.get_by_role("link", name="Export (JSON lines)")).to_be_visible()


async def test_a_long_transcript_shows_its_later_messages_when_asked(
    page: Page, tenant: Tenant, kithost: Kithost
) -> None:
    """A transcript is read a page of items at a time: the later ones come with Later
    messages, below the first."""
    shop = await _shop(kithost, tenant)
    said = [f"Line {n}" for n in range(TRANSCRIPT_PAGE + 2)]
    async with session_scope(kithost.sessionmaker) as db:
        thread = await conversation(db, shop, "u:long", said, hours_ago=4)
    await sign_in(page, tenant)
    await page.goto(tenant.admin(f"conversations?thread={thread}"))
    transcript = page.get_by_role("region", name="Transcript")
    await expect(transcript.get_by_text(said[TRANSCRIPT_PAGE - 1], exact=True)).to_be_visible()
    await expect(transcript.get_by_text(said[-1], exact=True)).to_have_count(0)
    await transcript.get_by_role("button", name="Later messages").click()
    await expect(transcript.get_by_text(said[-1], exact=True)).to_be_visible()
    await expect(transcript.get_by_text(said[0], exact=True)).to_be_visible()
    await expect(transcript.get_by_role("button", name="Later messages")).to_have_count(0)
