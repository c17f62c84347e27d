"""The dashboard's screens other than the widget editor, in real Chromium against ``kithost
serve`` (the session's, on SQLite): what a problem the server names shows, which actions ask
first, what a viewer may not touch, deleting a conversation and who reads them, where the focus
goes on arriving on a screen, and what a reload keeps.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import BrowserContext, Locator, Page, Request, Route, expect
from sqlalchemy import select

from kithost.auth.principals import CLI
from kithost.db import session_scope
from kithost.models import (
    DeliveryStatus,
    DocumentStatus,
    KnowledgeDocument,
    User,
    WebhookDelivery,
)
from kithost.tenants.service import create_tenant
from tests.browser.conftest import Kithost
from tests.browser.helpers import (
    Tenant,
    answer_confirm,
    open_screen,
    owner_api,
    sign_in,
    tenant,
)

__all__ = ["tenant"]  # the fixture


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """The dashboard's page: no script error while the test runs."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert errors == []


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


# Item: actions that cannot be undone ask first.


async def asks_first(page: Page, button: Locator, action: str, method: str, path: str) -> str:
    """Click ``button``, cancel the question (the focus is back on the button), click again and
    agree to ``action``: only the second click sends its ``method`` request to ``path`` (the
    URL's end). The question asked."""
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.method == method and request.url.split("?")[0].endswith(path):
            sent.append(request.url)

    page.on("request", record)
    try:
        await button.click()
        declined = await answer_confirm(page, action, agree=False)
        await expect(button).to_be_focused()
        await button.click()
        async with page.expect_response(
            lambda r: r.request.method == method and r.url.split("?")[0].endswith(path)
        ) as response:
            agreed = await answer_confirm(page, action, agree=True)
        assert (await response.value).ok
    finally:
        page.remove_listener("request", record)
    assert len(sent) == 1, sent
    assert declined == agreed
    return agreed


async def test_webhook_deletion_and_secret_rotation_ask_first(page: Page, tenant: Tenant) -> None:
    url = "https://hooks.example.test/kithost"
    async with owner_api(tenant) as api:
        body = {"url": url, "events": ["widget.published"]}
        made = await api.post(f"/api/v1/tenants/{tenant.slug}/webhooks", json=body)
        assert made.status_code == 201, made.text
        id = made.json()["endpoint"]["id"]
    await sign_in(page, tenant)
    await open_screen(page, tenant, "webhooks", "Webhooks")
    rotate = page.get_by_role("button", name="Rotate secret")
    asked = await asks_first(page, rotate, "Rotate secret", "POST", f"/webhooks/{id}/rotate-secret")
    assert asked.startswith(f"Give {url} a new signing secret?")
    await expect(page.get_by_test_id("secret")).to_be_visible()
    delete = page.get_by_role("button", name=f"Delete {url}")
    asked = await asks_first(page, delete, "Delete endpoint", "DELETE", f"/webhooks/{id}")
    assert asked.startswith(f"Delete the endpoint {url}?")
    await expect(delete).to_have_count(0)


async def test_revoking_an_api_client_asks_first(page: Page, tenant: Tenant) -> None:
    async with owner_api(tenant) as api:
        body = {"name": "Backend", "scopes": ["widgets:read"]}
        made = await api.post(f"/api/v1/tenants/{tenant.slug}/clients", json=body)
        assert made.status_code == 201, made.text
        id = made.json()["client"]["id"]
    await sign_in(page, tenant)
    await open_screen(page, tenant, "clients", "API clients")
    revoke = page.get_by_role("button", name="Revoke Backend")
    asked = await asks_first(page, revoke, "Revoke API client", "DELETE", f"/clients/{id}")
    assert asked.startswith("Revoke the API client Backend?")
    await expect(page.get_by_text("Revoked")).to_be_visible()


async def test_the_api_clients_say_who_made_them(page: Page, tenant: Tenant) -> None:
    """A client outlives its maker's membership: the list names the member who made it."""
    async with owner_api(tenant) as api:
        body = {"name": "Backend", "scopes": ["widgets:read"]}
        made = await api.post(f"/api/v1/tenants/{tenant.slug}/clients", json=body)
        assert made.status_code == 201, made.text
    await sign_in(page, tenant)
    await open_screen(page, tenant, "clients", "API clients")
    row = page.get_by_role("row", name=re.compile("Backend"))
    await expect(row.get_by_role("cell", name=tenant.owner, exact=True)).to_be_visible()


async def test_deleting_knowledge_asks_first(page: Page, tenant: Tenant) -> None:
    bases = f"/api/v1/tenants/{tenant.slug}/knowledge-bases"
    async with owner_api(tenant) as api:
        made = await api.post(bases, json={"name": "Manuals", "description": ""})
        assert made.status_code == 201, made.text
        base = made.json()["id"]
        files = {"file": ("faq.md", b"# Tents\n\nThey keep the rain out.\n", "text/markdown")}
        uploaded = await api.post(f"{bases}/{base}/documents", files=files)
        assert uploaded.status_code in (201, 202), uploaded.text
        document = uploaded.json()["id"]
    await sign_in(page, tenant)
    await open_screen(page, tenant, "knowledge", "Knowledge")
    await page.get_by_role("button", name="Manuals", exact=True).click()
    delete = page.get_by_role("button", name="Delete faq.md")
    asked = await asks_first(
        page, delete, "Delete document", "DELETE", f"/{base}/documents/{document}"
    )
    assert asked.startswith("Delete the document faq.md?")
    await expect(delete).to_have_count(0)
    delete = page.get_by_role("button", name="Delete Manuals")
    asked = await asks_first(
        page, delete, "Delete knowledge base", "DELETE", f"/knowledge-bases/{base}"
    )
    assert asked.startswith("Delete the knowledge base Manuals")
    await expect(delete).to_have_count(0)


async def test_removing_the_openai_key_asks_first(page: Page, tenant: Tenant) -> None:
    async with owner_api(tenant) as api:
        key = {"api_key": "sk-test-" + "k" * 36 + "wxyz"}
        put = await api.put(f"/api/v1/tenants/{tenant.slug}/openai-key", json=key)
        assert put.status_code == 200, put.text
    await sign_in(page, tenant)
    await open_screen(page, tenant, "settings", "Settings")
    remove = page.get_by_role("button", name="Remove key")
    asked = await asks_first(page, remove, "Remove key", "DELETE", "/openai-key")
    assert asked.startswith("Remove the OpenAI key ending in …wxyz?")
    await expect(page.get_by_text("No key: widgets use the platform key")).to_be_visible()


async def test_revoking_an_invitation_asks_first(page: Page, tenant: Tenant) -> None:
    async with owner_api(tenant) as api:
        body = {"email": "later@example.test", "role": "editor"}
        made = await api.post(f"/api/v1/tenants/{tenant.slug}/invitations", json=body)
        assert made.status_code == 201, made.text
        id = made.json()["invitation"]["id"]
    await sign_in(page, tenant)
    await open_screen(page, tenant, "team", "Team")
    revoke = page.get_by_role("button", name="Revoke the invitation of later@example.test")
    asked = await asks_first(page, revoke, "Revoke invitation", "DELETE", f"/invitations/{id}")
    assert asked == "Revoke the invitation of later@example.test? Its link stops working."
    await expect(page.get_by_text("No pending invitations.")).to_be_visible()


# Item: a viewer is offered no control that can only be refused.


async def test_a_viewer_finds_the_forms_and_exports_they_may_not_use_disabled(
    page: Page, tenant: Tenant
) -> None:
    """Opened by URL, the webhook and client forms were enabled (and 403'd), as were the
    conversation exports."""
    await sign_in(page, tenant, tenant.viewer)
    await open_screen(page, tenant, "webhooks", "Webhooks")
    await expect(page.get_by_label("URL")).to_be_disabled()
    await expect(page.get_by_role("button", name="Add endpoint")).to_be_disabled()
    await expect(page.get_by_text("Your role can view this but not change it.")).to_be_visible()
    await open_screen(page, tenant, "clients", "API clients")
    await expect(page.get_by_label("Name")).to_be_disabled()
    await expect(page.get_by_role("button", name="Create client")).to_be_disabled()
    await open_screen(page, tenant, "conversations", "Conversations")
    for name in ("Export (JSON lines)", "Export messages (CSV)", "Export in the background"):
        await expect(page.get_by_text(name, exact=True)).to_be_disabled()
    await expect(page.get_by_label("Format of the background export")).to_be_disabled()


async def test_an_owner_finds_the_same_controls_enabled(page: Page, tenant: Tenant) -> None:
    await sign_in(page, tenant)
    await open_screen(page, tenant, "webhooks", "Webhooks")
    await expect(page.get_by_role("button", name="Add endpoint")).to_be_enabled()
    await expect(page.get_by_text("Your role can view this but not change it.")).to_have_count(0)
    await open_screen(page, tenant, "clients", "API clients")
    await expect(page.get_by_role("button", name="Create client")).to_be_enabled()
    await open_screen(page, tenant, "conversations", "Conversations")
    await expect(page.get_by_role("link", name="Export (JSON lines)")).to_be_visible()
    await expect(page.get_by_role("button", name="Export in the background")).to_be_enabled()


# Item: conversations are deleted, and opened to editors, from the dashboard.


async def test_an_owner_deletes_a_conversation_once_they_confirm(
    page: Page, tenant: Tenant
) -> None:
    await sign_in(page, tenant)
    await open_screen(page, tenant, "conversations", "Conversations")
    await page.get_by_role("button", name="Question 0 about ten").click()
    transcript = page.get_by_role("region", name="Transcript")
    await expect(transcript.get_by_text("Question 0 about tents")).to_be_visible()
    delete = transcript.get_by_role("button", name="Delete conversation")
    asked = await asks_first(
        page, delete, "Delete conversation", "DELETE", f"/conversations/{tenant.threads[0]}"
    )
    assert asked.startswith("Delete this conversation?")
    await expect(transcript).to_have_count(0)
    await expect(page.get_by_role("button", name="Question 0 about ten")).to_have_count(0)
    await expect(page.get_by_role("button", name="Question 1 about ten")).to_be_visible()
    async with owner_api(tenant) as api:
        gone = await api.get(f"/api/v1/tenants/{tenant.slug}/conversations/{tenant.threads[0]}")
        assert gone.status_code == 404, gone.text


async def test_an_owner_lets_editors_read_conversations(page: Page, tenant: Tenant) -> None:
    await sign_in(page, tenant)
    await open_screen(page, tenant, "settings", "Settings")
    editors = page.get_by_label("Editors may read and export conversations")
    await expect(editors).not_to_be_checked()
    # Checked once the server has it (a controlled box).
    await editors.click()
    await expect(editors).to_be_checked()
    await expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    async with owner_api(tenant) as api:
        answer = await api.get(f"/api/v1/tenants/{tenant.slug}/conversations/settings")
        assert answer.json() == {"editors_may_read": True}
    await page.reload()
    await expect(editors).to_be_checked()
    await editors.click()
    await expect(editors).not_to_be_checked()
    async with owner_api(tenant) as api:
        answer = await api.get(f"/api/v1/tenants/{tenant.slug}/conversations/settings")
        assert answer.json() == {"editors_may_read": False}


async def test_a_viewer_is_told_they_do_not_read_conversations(page: Page, tenant: Tenant) -> None:
    await sign_in(page, tenant, tenant.viewer)
    await open_screen(page, tenant, "settings", "Settings")
    await expect(page.get_by_text("Your role does not read conversations.")).to_be_visible()


# Items: the time zone is chosen from a list; a reload keeps a screen's filters.


async def test_analytics_keeps_its_range_and_time_zone_across_a_reload(
    page: Page, tenant: Tenant
) -> None:
    """The time zone was free text sending eleven requests (each 422) per keystroke; a
    reload reset the range and the zone."""
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status == 422 else None)
    await sign_in(page, tenant)
    await open_screen(page, tenant, "analytics", "Analytics")
    days = page.locator("label.filter", has_text="Range").locator("select")
    zone = page.locator("label.filter", has_text="Time zone").locator("select")
    await days.select_option("30")
    await zone.select_option("Europe/Paris")
    await expect(page.locator('[data-metric="loads"]')).to_have_text("0")
    await page.reload()
    await expect(days).to_have_value("30")
    await expect(zone).to_have_value("Europe/Paris")
    assert "tz=Europe%2FParis" in page.url
    assert refused == []


async def test_conversations_keep_their_search_filters_and_transcript_across_a_reload(
    page: Page, tenant: Tenant
) -> None:
    await sign_in(page, tenant)
    await open_screen(page, tenant, "conversations", "Conversations")
    await page.get_by_label("End user").fill("u:1")
    await page.get_by_label("Search messages").fill("tents")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.get_by_role("button", name="Question 0 about ten")).to_have_count(0)
    await page.get_by_role("button", name="Question 1 about ten").click()
    transcript = page.get_by_role("region", name="Transcript")
    await expect(transcript.get_by_text("Question 1 about tents")).to_be_visible()
    await page.reload()
    await expect(page.get_by_label("Search messages")).to_have_value("tents")
    await expect(page.get_by_label("End user")).to_have_value("u:1")
    await expect(transcript.get_by_text("Question 1 about tents")).to_be_visible()
    await expect(page.get_by_role("button", name="Question 0 about ten")).to_have_count(0)
    # A one-character search says why it finds what it did.
    await page.get_by_label("Search messages").fill("t")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.get_by_text("Search needs at least 2 characters")).to_be_visible()


# Item: the knowledge list follows its documents' processing.


async def test_the_knowledge_list_shows_a_document_ready_once_it_is(
    page: Page, tenant: Tenant, kithost: Kithost
) -> None:
    """The base's card said ready while the list above kept "1 processing" until a reload."""
    bases = f"/api/v1/tenants/{tenant.slug}/knowledge-bases"
    async with owner_api(tenant) as api:
        made = await api.post(bases, json={"name": "Manuals", "description": ""})
        base = made.json()["id"]
        files = {"file": ("faq.md", b"# Tents\n\nThey keep the rain out.\n", "text/markdown")}
        uploaded = await api.post(f"{bases}/{base}/documents", files=files)
        assert uploaded.status_code in (201, 202), uploaded.text
        document = uploaded.json()["id"]
    await sign_in(page, tenant)
    await open_screen(page, tenant, "knowledge", "Knowledge")
    await expect(page.get_by_text("1 documents · 1 processing · 0 failed")).to_be_visible()
    await page.get_by_role("button", name="Manuals", exact=True).click()
    await expect(page.locator(".badge", has_text="processing")).to_be_visible()
    # What the worker does once OpenAI has indexed the file.
    async with session_scope(kithost.sessionmaker) as db:
        row = await db.get(KnowledgeDocument, uuid.UUID(document))
        assert row is not None
        row.status = DocumentStatus.ready
    await expect(page.locator(".badge", has_text="ready")).to_be_visible()
    await expect(page.get_by_text("1 documents · 0 processing · 0 failed")).to_be_visible()


# Item: inviting again says what it replaces, and keeps the role chosen.


async def test_inviting_again_says_it_replaces_the_earlier_link_and_keeps_the_role(
    page: Page, tenant: Tenant
) -> None:
    await sign_in(page, tenant)
    await open_screen(page, tenant, "team", "Team")
    invite = page.locator("form").filter(has_text="Invite someone")
    email, role = invite.get_by_label("Email", exact=True), invite.get_by_label("Role", exact=True)
    await email.fill("twice@example.test")
    await role.select_option("viewer")
    await invite.get_by_role("button", name="Invite").click()
    first = await page.get_by_test_id("invite-link").inner_text()
    await expect(page.get_by_text("twice@example.test as viewer")).to_be_visible()
    await expect(role).to_have_value("viewer")
    await email.fill("Twice@example.test")
    await expect(invite.get_by_text("inviting again replaces it")).to_be_visible()
    await invite.get_by_role("button", name="Invite").click()
    await expect(page.get_by_test_id("invite-link")).not_to_have_text(first)
    await expect(page.get_by_text("It replaces their earlier invitation")).to_be_visible()
    await expect(page.get_by_text("twice@example.test as viewer")).to_be_visible()


# Item: feedback and focus on the screens.


async def test_settings_check_what_they_can_before_asking_or_sending(
    page: Page, tenant: Tenant
) -> None:
    """A cleared retention box showed 0; an end user id of the wrong shape was asked about
    ("Delete every record of bogus?") before the 422."""
    await sign_in(page, tenant)
    await open_screen(page, tenant, "settings", "Settings")
    retention = page.get_by_label("Keep raw events, error samples and chats for (days)")
    await expect(retention).not_to_have_value("")
    await retention.fill("")
    await expect(retention).to_have_value("")
    await retention.press("Enter")
    await expect(page.get_by_text("Enter a whole number of days, at least 1.")).to_be_visible()
    await page.get_by_label("End user id").fill("bogus")
    await page.get_by_role("button", name="Delete their data").click()
    await expect(page.get_by_text("An end user id starts with u:")).to_be_visible()
    await expect(page.get_by_role("alertdialog")).to_have_count(0)


async def test_the_keyboard_follows_new_forms_and_dismissed_secrets(
    page: Page, tenant: Tenant
) -> None:
    """Focus fell to the page's body when the new widget form opened and after Done."""
    await sign_in(page, tenant)
    await page.get_by_role("button", name="New widget").click()
    await expect(page.get_by_label("Name")).to_be_focused()
    await open_screen(page, tenant, "clients", "API clients")
    await page.get_by_label("Name").fill("Backend")
    await page.get_by_role("button", name="Create client").click()
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_test_id("secret")).to_have_count(0)
    assert await page.evaluate("document.activeElement !== document.body")


async def test_arriving_on_a_screen_puts_the_focus_on_its_heading(
    page: Page, tenant: Tenant
) -> None:
    """The focus stayed on the link followed: a screen reader said nothing of the new screen,
    and Tab went on through the navigation."""
    await sign_in(page, tenant)
    await expect(page.get_by_role("heading", name="Widgets", exact=True, level=1)).to_be_focused()
    # The page's first load leaves the focus where the browser puts it.
    await open_screen(page, tenant, "conversations", "Conversations")
    assert await page.evaluate("document.activeElement === document.body")
    # A filter changes the URL's query only: the screen, and the focus, stay.
    with_error = page.get_by_label("With an error")
    await with_error.check()
    await expect(page).to_have_url(re.compile(r"[?&]has_error=1"))
    await expect(with_error).to_be_focused()
    # Another screen, from the keyboard, by a click and by Back: the focus is on its heading.
    sections = page.get_by_role("navigation", name="Sections")
    await sections.get_by_role("link", name="Team").focus()
    await page.keyboard.press("Enter")
    team = page.get_by_role("heading", name="Team", exact=True, level=1)
    await expect(team).to_be_focused()
    await expect(page).to_have_title("Team · Kithost")
    await sections.get_by_role("link", name="Audit log").click()
    await expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_focused()
    await expect(page).to_have_title("Audit log · Kithost")
    await page.go_back()
    await expect(team).to_be_focused()
    # The editor's tabs are parts of one screen: the focus stays on the tab followed.
    await sections.get_by_role("link", name="Widgets").click()
    await page.get_by_role("link", name="Shop", exact=True).click()
    await expect(page.get_by_role("heading", name="Shop", exact=True, level=1)).to_be_focused()
    origins = page.get_by_role("navigation", name="Widget settings").get_by_role(
        "link", name="Origins"
    )
    await origins.click()
    await expect(origins).to_have_attribute("aria-current", "page")
    await expect(origins).to_be_focused()


async def test_a_test_delivery_shows_its_outcome_without_reopening(
    page: Page, tenant: Tenant, kithost: Kithost
) -> None:
    """The delivery stayed "pending (attempt 0)" until Deliveries was opened again."""
    url = "https://hooks.example.test/kithost"
    async with owner_api(tenant) as api:
        body = {"url": url, "events": ["widget.published"]}
        made = await api.post(f"/api/v1/tenants/{tenant.slug}/webhooks", json=body)
        assert made.status_code == 201, made.text
    await sign_in(page, tenant)
    await open_screen(page, tenant, "webhooks", "Webhooks")
    async with page.expect_response(lambda r: r.url.endswith("/test")) as sent:
        await page.get_by_role("button", name="Send a test").click()
    delivery = (await (await sent.value).json())["id"]
    await expect(page.get_by_text("pending (attempt 0)")).to_be_visible()
    # What the worker does once the receiver answers.
    async with session_scope(kithost.sessionmaker) as db:
        row = await db.get(WebhookDelivery, uuid.UUID(delivery))
        assert row is not None
        row.status, row.attempts, row.response_status = DeliveryStatus.delivered, 1, 200
    await expect(page.get_by_text("delivered (attempt 1)")).to_be_visible()


# Items: the tenant switcher keeps the section; a removed member is told so.


async def test_switching_tenants_keeps_the_section(
    page: Page, tenant: Tenant, kithost: Kithost
) -> None:
    """Switching from one tenant's analytics landed on the other's widgets."""
    other = f"{tenant.slug}-b"
    async with session_scope(kithost.sessionmaker) as db:
        owner = (await db.execute(select(User).where(User.email == tenant.owner))).scalar_one()
        await create_tenant(db, CLI, slug=other, name="Other", owner=owner)
    await sign_in(page, tenant)
    await open_screen(page, tenant, "analytics", "Analytics")
    await page.locator("label.switcher select").select_option(other)
    await expect(page).to_have_url(re.compile(f"/admin/t/{other}/analytics$"))
    await expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible()


async def test_a_member_removed_while_signed_in_is_told_they_lost_access(
    page: Page, tenant: Tenant
) -> None:
    """Each screen said "No tenant …" about a tenant that exists."""
    await sign_in(page, tenant, tenant.viewer)
    async with owner_api(tenant) as api:
        members = (await api.get(f"/api/v1/tenants/{tenant.slug}/members")).json()
        viewer = next(m["user_id"] for m in members if m["email"] == tenant.viewer)
        removed = await api.delete(f"/api/v1/tenants/{tenant.slug}/members/{viewer}")
        assert removed.status_code == 204, removed.text
    await page.get_by_role("link", name="Analytics").click()
    await expect(page.get_by_role("heading", name=f"No access to {tenant.slug}")).to_be_visible()
    await expect(page.get_by_text("No tenant")).to_have_count(0)
