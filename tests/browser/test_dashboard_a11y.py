"""The dashboard passes axe-core's WCAG 2.0/2.1 A and AA rules and its best practices
(heading order, landmarks, a level-one heading) in real Chromium, on every screen an owner
opens, with data on it: widgets, each tab of the widget editor (an HTTP tool being added, a
version compared with the draft), conversations with a transcript open, analytics of an hour,
an error group's sample, a knowledge base, a webhook with its deliveries, an API client, the
team with an invitation, the audit log, settings; the sign-in and invitation screens signed
out. What Tab stops at besides controls has a role and a name, and each screen names itself
in the browser's title. The question before an action that
cannot be undone (confirm.tsx) is a modal alert dialog that passes axe too: answered from the
keyboard, it holds the focus, Escape sends nothing and gives the focus back to the button that
asked.

axe-core is admin-ui's devDependency (``make install``), put in every page by an init script,
which the dashboard's CSP does not apply to. The editor's preview is embed/'s framed page,
which embed/'s tests check (``iframes: false``).
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.helpers import (
    END_USERS,
    Tenant,
    console_tenant,
    open_screen,
    owner_api,
    page,
    sign_in,
    violations,
)

__all__ = ["console_tenant", "page"]  # the fixtures

URL = "https://hooks.example.test/kithost"
EDITOR_TABS = (
    "Design",
    "Agent",
    "Launcher & behaviour",
    "Advanced JSON",
    "Origins",
    "Publish & versions",
    "Embed",
    "Secrets",
)


@pytest.fixture
async def tenant(console_tenant: Tenant) -> Tenant:
    """The console's tenant, and a webhook endpoint with a delivery, an API client, a knowledge
    base with a document and an invitation pending."""
    tenant = console_tenant
    base = f"/api/v1/tenants/{tenant.slug}"
    async with owner_api(tenant) as api:
        answers = [
            made := await api.post(
                f"{base}/webhooks", json={"url": URL, "events": ["widget.published"]}
            ),
            await api.post(f"{base}/webhooks/{made.json()['endpoint']['id']}/test"),
            await api.post(f"{base}/clients", json={"name": "Backend", "scopes": ["widgets:read"]}),
            await api.post(
                f"{base}/invitations", json={"email": "later@example.test", "role": "editor"}
            ),
            knowledge := await api.post(
                f"{base}/knowledge-bases", json={"name": "Manuals", "description": "How to"}
            ),
            await api.post(
                f"{base}/knowledge-bases/{knowledge.json()['id']}/documents",
                files={
                    "file": ("faq.md", b"# Tents\n\nThey keep the rain out.\n", "text/markdown")
                },
            ),
        ]
    for answer in answers:
        assert answer.status_code in (200, 201, 202), answer.text
    return tenant


async def test_the_signed_out_screens_pass_axe(page: Page, tenant: Tenant) -> None:
    found: list[str] = []
    await page.goto(tenant.url + "/admin/sign-in")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("Enter your email.")).to_be_visible()
    found += await violations(page, "sign-in")
    await page.goto(tenant.url + "/admin/invite#token=not-a-real-one")
    await expect(page.get_by_role("heading", name="Join a Kithost team")).to_be_visible()
    found += await violations(page, "invitation")
    await page.goto(tenant.url + "/admin/invite")
    await expect(page.get_by_text("This invitation link has no token.")).to_be_visible()
    found += await violations(page, "invitation without a token")
    assert found == [], "\n".join(found)
    await page.goto(tenant.url + "/admin/sign-in")
    await expect(page).to_have_title("Sign in · Kithost")


async def test_every_screen_passes_axe(page: Page, tenant: Tenant) -> None:
    found: list[str] = []
    await sign_in(page, tenant)
    await expect(page.get_by_role("cell", name="Shop", exact=True)).to_be_visible()
    found += await violations(page, "widgets")
    await page.get_by_role("link", name="Shop", exact=True).click()
    tabs = page.get_by_role("navigation", name="Widget settings")
    for tab in EDITOR_TABS:
        await tabs.get_by_role("link", name=tab, exact=True).click()
        await expect(tabs.locator('[aria-current="page"]')).to_have_text(tab)
        await expect(page.locator("iframe[title='Live preview of the draft']")).to_be_visible()
        found += await violations(page, f"editor's {tab}")
        if tab == "Design":  # a draft unlike version 1, for the versions' diff
            await page.get_by_label("Greeting").fill("Hello from the shop")
            await page.get_by_role("button", name="Save the draft").click()
            await expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
        if tab == "Agent":
            await page.get_by_role("button", name="Add: Your endpoint (HTTP)").click()
            await expect(page.get_by_role("heading", name="Tool secret")).to_be_visible()
            found += await violations(page, "editor's Agent with an HTTP tool")
            await page.get_by_role("button", name="Discard changes").click()
        if tab == "Publish & versions":
            await page.get_by_role("button", name="Compare with the draft").click()
            await expect(page.locator("pre.diff")).to_be_visible()
            found += await violations(page, "editor's version 1")
    await open_screen(page, tenant, "conversations", "Conversations")
    question = f"Question 0 from {END_USERS[0]}"
    await page.get_by_role("button", name=question[:20]).click()
    transcript = page.get_by_role("region", name="Transcript")
    await expect(transcript.get_by_text(question)).to_be_visible()
    found += await violations(page, "conversations")
    await open_screen(page, tenant, "analytics", "Analytics")
    await expect(page.locator('[data-metric="loads"]')).to_have_text("9")
    found += await violations(page, "analytics")
    await open_screen(page, tenant, "errors", "Errors")
    await page.get_by_text("Sample").click()
    await expect(page.get_by_text("How to fix: Check the allowed origins.")).to_be_visible()
    found += await violations(page, "errors")
    await open_screen(page, tenant, "knowledge", "Knowledge")
    await page.get_by_role("button", name="Manuals", exact=True).click()
    await expect(page.get_by_role("heading", name="Manuals")).to_be_visible()
    await expect(page.get_by_text("faq.md")).to_be_visible()
    found += await violations(page, "knowledge")
    await open_screen(page, tenant, "webhooks", "Webhooks")
    await page.get_by_role("button", name="Deliveries").click()
    await expect(page.get_by_role("cell", name="webhook.test", exact=True)).to_be_visible()
    found += await violations(page, "webhooks")
    await open_screen(page, tenant, "clients", "API clients")
    await expect(page.get_by_role("cell", name="Backend", exact=True)).to_be_visible()
    found += await violations(page, "API clients")
    await open_screen(page, tenant, "team", "Team")
    await expect(page.get_by_text("later@example.test")).to_be_visible()
    found += await violations(page, "team")
    await open_screen(page, tenant, "audit", "Audit log")
    await expect(page.get_by_role("cell", name="webhook.created").first).to_be_visible()
    found += await violations(page, "audit log")
    await open_screen(page, tenant, "settings", "Settings")
    found += await violations(page, "settings")
    assert found == [], "\n".join(found)
    await expect(page).to_have_title("Settings · Kithost")


async def test_the_question_before_an_irreversible_action_is_answered_from_the_keyboard(
    page: Page, tenant: Tenant
) -> None:
    """Enter on the focused button asks: a modal alert dialog named by its heading, described
    by the question, its focus on Cancel; Tab goes round its two buttons and the browser's own
    controls, never to the page behind; axe finds nothing wrong with it. Escape sends nothing
    and the focus is back on the button; Space asks again, and the button named by the action
    sends the request."""
    await sign_in(page, tenant)
    await open_screen(page, tenant, "clients", "API clients")
    revoke = page.get_by_role("button", name="Revoke Backend")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "DELETE" else None)

    await revoke.focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("alertdialog", name="Revoke API client?", exact=True)
    await expect(dialog).to_be_visible()
    await expect(dialog).to_have_accessible_description(
        re.compile(r"^Revoke the API client Backend\? Its tokens stop working at once")
    )
    cancel = dialog.get_by_role("button", name="Cancel", exact=True)
    agree = dialog.get_by_role("button", name="Revoke API client", exact=True)
    await expect(cancel).to_be_focused()
    # Tab goes round the dialog's buttons and the browser's own controls (nothing in the page
    # has the focus then), never to the page behind.
    focused: list[str] = []
    for _ in range(6):
        await page.keyboard.press("Tab")
        focused.append(
            await dialog.evaluate(
                """(dialog) => { const at = document.activeElement;
                    return dialog.contains(at) ? at.textContent
                        : at === document.body ? 'nothing' : at.outerHTML.slice(0, 80); }"""
            )
        )
    assert set(focused) <= {"Cancel", "Revoke API client", "nothing"}, focused
    assert {"Cancel", "Revoke API client"} <= set(focused), focused
    await expect(cancel).to_be_focused()
    found = await violations(page, "the question before revoking an API client")
    assert found == [], "\n".join(found)
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(revoke).to_be_focused()
    assert sent == []

    await page.keyboard.press("Space")
    await expect(cancel).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(agree).to_be_focused()
    async with page.expect_response(lambda r: r.request.method == "DELETE") as revoked:
        await page.keyboard.press("Enter")
    assert (await revoked.value).ok
    await expect(page.get_by_text("Revoked")).to_be_visible()
    assert len(sent) == 1, sent
