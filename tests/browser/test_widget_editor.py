"""The widget editor (``/admin/t/{tenant}/widgets/{id}/…``) in real Chromium against the
session's ``kithost serve`` (SQLite): edits of the draft kept across its tabs and guarded when
leaving, fields that keep focus, colour pairs ChatKit accepts, an edit conflict recovered,
destructive actions confirmed, and a viewer's controls disabled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from playwright.async_api import BrowserContext, Dialog, Page, expect

from kithost.auth.principals import CLI
from kithost.db import session_scope
from kithost.tenants.service import create_tenant
from kithost.users.service import create_user
from tests.browser.conftest import Kithost
from tests.browser.helpers import answer_confirm

TENANT = "editing"
OWNER = "owner@editing.example"
VIEWER = "viewer@editing.example"
PASSWORD = "a long editor password"


@dataclass(frozen=True)
class Editor:
    url: str

    def widget(self, widget: dict[str, Any], tab: str = "") -> str:
        return f"{self.url}/admin/t/{TENANT}/widgets/{widget['id']}/{tab}"


@pytest.fixture(scope="module")
async def editor(kithost: Kithost) -> Editor:
    """Tenant ``editing`` with its owner, and a viewer who accepted an invitation."""
    async with session_scope(kithost.sessionmaker) as db:
        owner = await create_user(db, CLI, OWNER, password=PASSWORD)
        await create_tenant(db, CLI, slug=TENANT, name="Editing", owner=owner.user)
    async with api(kithost.url) as client:
        invited = await client.post(
            f"/api/v1/tenants/{TENANT}/invitations", json={"email": VIEWER, "role": "viewer"}
        )
        assert invited.status_code == 201, invited.text
        token = invited.json()["accept_url"].split("#token=")[1]
    async with httpx2.AsyncClient(base_url=kithost.url) as stranger:
        accept = {"token": token, "password": PASSWORD, "name": "Vera"}
        accepted = await stranger.post("/api/v1/invitations/accept", json=accept)
        assert accepted.status_code == 200, accepted.text
    return Editor(kithost.url)


@asynccontextmanager
async def api(url: str, email: str = OWNER) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client signed in (another member of staff), sending the CSRF token on writes."""
    async with httpx2.AsyncClient(base_url=url) as client:
        signed_in = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        client.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
        yield client


async def new_widget(editor: Editor, name: str, **fields: Any) -> dict[str, Any]:
    async with api(editor.url) as client:
        created = await client.post(
            f"/api/v1/tenants/{TENANT}/widgets", json={"name": name, **fields}
        )
        assert created.status_code == 201, created.text
        widget: dict[str, Any] = created.json()
        return widget


async def read_widget(editor: Editor, widget: dict[str, Any]) -> dict[str, Any]:
    async with api(editor.url) as client:
        answer = await client.get(f"/api/v1/tenants/{TENANT}/widgets/{widget['id']}")
        assert answer.status_code == 200, answer.text
        read: dict[str, Any] = answer.json()
        return read


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """The dashboard's page: no script fails on it."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert errors == []


async def sign_in(page: Page, editor: Editor, email: str = OWNER) -> None:
    await page.goto(editor.url + "/admin/")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Widgets")).to_be_visible()


class Dialogs:
    """The browser's own dialogs on the page (beforeunload: the dashboard asks its questions in
    a dialog of its own), each dismissed."""

    def __init__(self, page: Page) -> None:
        self.kinds: list[str] = []
        page.on("dialog", self._dismiss)

    async def _dismiss(self, dialog: Dialog) -> None:
        await dialog.dismiss()
        self.kinds.append(dialog.type)

    async def asked(self, count: int) -> list[str]:
        """The kinds of the dialogs asked, once there are ``count``."""
        for _ in range(150):
            if len(self.kinds) >= count:
                break
            await asyncio.sleep(0.1)
        return self.kinds


async def test_draft_edits_stay_across_tabs_and_leaving_asks_first(
    editor: Editor, page: Page
) -> None:
    widget = await new_widget(editor, "Tabs")
    await sign_in(page, editor)
    await page.goto(editor.widget(widget, "design"))
    greeting = page.get_by_label("Greeting")
    await greeting.fill("Hello from A")
    unsaved = page.get_by_role("status").filter(has_text="Unsaved changes")
    await expect(unsaved).to_be_visible()

    # Another draft tab, a tab that is not the draft, then back: the edit is still there.
    await page.get_by_role("link", name="Agent", exact=True).click()
    await expect(page.get_by_label("Model", exact=True)).to_be_visible()
    await expect(unsaved).to_be_visible()
    await page.get_by_role("link", name="Origins").click()
    await expect(page.get_by_text("The draft has changes you have not saved")).to_be_visible()
    await page.get_by_role("link", name="Design").click()
    await expect(greeting).to_have_value("Hello from A")
    await expect(unsaved).to_be_visible()

    # Leaving the editor asks first; staying keeps the edit.
    dialogs = Dialogs(page)
    await page.get_by_role("link", name="Analytics").click()
    asked = await answer_confirm(page, "Leave the editor", agree=False)
    assert asked.startswith("Leave the editor?")
    await expect(greeting).to_have_value("Hello from A")
    assert page.url == editor.widget(widget, "design")

    # So does unloading the page (a reload, closing the tab), in the browser's own dialog.
    await page.evaluate("() => { location.reload(); }")
    assert await dialogs.asked(1) == ["beforeunload"]
    await expect(greeting).to_have_value("Hello from A")

    # Saved: the status says so, and leaving asks nothing.
    await page.get_by_role("button", name="Save the draft").click()
    await expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    assert (await read_widget(editor, widget))["config"]["chatkit"]["startScreen"] == {
        "greeting": "Hello from A"
    }
    await page.get_by_role("link", name="Analytics").click()
    await expect(page.get_by_role("heading", name="Analytics")).to_be_visible()
    await expect(page.get_by_role("alertdialog")).to_have_count(0)
    assert dialogs.kinds == ["beforeunload"]

    # An edit abandoned when asked is gone: the editor shows the saved draft.
    await page.go_back()
    await greeting.fill("Never saved")
    await page.get_by_role("link", name="Analytics").click()
    await answer_confirm(page, "Leave the editor", agree=True)
    await expect(page.get_by_role("heading", name="Analytics")).to_be_visible()
    await page.go_back()
    await expect(greeting).to_have_value("Hello from A")


async def test_an_id_being_typed_keeps_its_focus(editor: Editor, page: Page) -> None:
    widget = await new_widget(editor, "Ids")
    await sign_in(page, editor)
    await page.goto(editor.widget(widget, "agent"))
    await page.get_by_role("button", name="Add: Your endpoint (HTTP)").click()
    tool = page.get_by_role("group", name="Your endpoint (HTTP): http-1")
    await tool.get_by_label("Id", exact=True).click()
    await page.keyboard.press("End")
    await page.keyboard.type("xyz")
    tool = page.get_by_role("group", name="Your endpoint (HTTP): http-1xyz")
    await expect(tool.get_by_label("Id", exact=True)).to_be_focused()

    await page.get_by_role("button", name="Add an agent").click()
    agent = page.get_by_role("group", name="Agent Agent 1")
    await agent.get_by_label("Id", exact=True).click()
    await page.keyboard.press("End")
    await page.keyboard.type("-billing")
    await expect(agent.get_by_label("Id", exact=True)).to_have_value("agent-1-billing")
    await expect(agent.get_by_label("Id", exact=True)).to_be_focused()

    # Removing a tool leaves the next one its own values.
    await page.get_by_role("button", name="Add: A function of your page").click()
    page_tool = page.get_by_role("group", name="A function of your page: client-1")
    await page_tool.get_by_label("Arguments (JSON Schema of an object)").fill('{"type": "object"}')
    await tool.get_by_role("button", name="Remove this tool").click()
    await expect(page_tool.get_by_label("Arguments (JSON Schema of an object)")).to_have_value(
        '{\n  "type": "object"\n}'
    )


async def test_design_colours_save_as_pairs_and_errors_show_at_the_field(
    editor: Editor, page: Page
) -> None:
    widget = await new_widget(editor, "Colours")
    await sign_in(page, editor)
    await page.goto(editor.widget(widget, "design"))
    await page.get_by_label("Accent colour", exact=True).fill("#ff0000")
    await expect(page.get_by_label("Accent level")).to_have_value("1")
    await page.get_by_label("Surface background", exact=True).fill("#ffffff")
    await expect(page.get_by_label("Surface foreground", exact=True)).to_have_value("#111827")
    await page.get_by_label("Grayscale hue").fill("200")
    await expect(page.get_by_label("Grayscale tint")).to_have_value("4")
    await page.get_by_role("button", name="Save the draft").click()
    await expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    color = (await read_widget(editor, widget))["config"]["chatkit"]["theme"]["color"]
    assert color == {
        "accent": {"primary": "#ff0000", "level": 1},
        "surface": {"background": "#ffffff", "foreground": "#111827"},
        "grayscale": {"hue": 200, "tint": 4},
    }

    # Clearing one of a pair clears the other.
    await page.get_by_label("Accent colour", exact=True).fill("")
    await expect(page.get_by_label("Accent level")).to_have_value("")

    # Half a pair written as JSON: the server's error shows beside the missing member.
    await page.get_by_role("link", name="Advanced JSON").click()
    await page.get_by_label("ChatKit options (JSON)").fill(
        '{"theme": {"color": {"accent": {"primary": "#00ff00"}}}}'
    )
    await page.get_by_role("button", name="Apply to the draft").click()
    await page.get_by_role("link", name="Design").click()
    await page.get_by_role("button", name="Save the draft").click()
    level = page.locator(".field.invalid").filter(has=page.get_by_label("Accent level"))
    await expect(level.locator(".error")).to_contain_text("'level' is a required property")


async def test_an_edit_conflict_loads_the_latest_with_the_edits_on_top(
    editor: Editor, page: Page
) -> None:
    widget = await new_widget(editor, "Conflict", config={"launcher": {"label": "Ours"}})
    await sign_in(page, editor)
    await page.goto(editor.widget(widget, "design"))
    await page.get_by_label("Greeting").fill("Mine")
    await page.get_by_label("Placeholder").fill("Ask away")

    # Meanwhile someone else changes the greeting and the launcher.
    async with api(editor.url) as client:
        theirs = {
            "launcher": {"label": "Theirs"},
            "chatkit": {"startScreen": {"greeting": "Theirs"}},
        }
        changed = await client.put(
            f"/api/v1/tenants/{TENANT}/widgets/{widget['id']}/config",
            json=theirs,
            headers={"If-Match": f'"{widget["revision"]}"'},
        )
        assert changed.status_code == 200, changed.text

    await page.get_by_role("button", name="Save the draft").click()
    await expect(page.get_by_text("Someone changed this widget")).to_be_visible()
    await page.get_by_role("button", name="Load the latest draft and keep my changes").click()
    note = page.get_by_role("status").filter(has_text="The latest draft is loaded")
    await expect(note).to_contain_text("chatkit.startScreen.greeting")
    await expect(page.get_by_label("Greeting")).to_have_value("Mine")
    await expect(page.get_by_label("Placeholder")).to_have_value("Ask away")
    await page.get_by_role("button", name="Save the draft").click()
    await expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    config = (await read_widget(editor, widget))["config"]
    assert config["chatkit"]["startScreen"] == {"greeting": "Mine"}
    assert config["chatkit"]["composer"] == {"placeholder": "Ask away"}
    assert config["launcher"]["label"] == "Theirs"

    # Publishing on a stale widget: load the latest, then publish.
    await page.get_by_role("link", name="Publish & versions").click()
    await expect(page.get_by_role("button", name="Publish", exact=True)).to_be_enabled()
    async with api(editor.url) as client:
        added = await client.post(
            f"/api/v1/tenants/{TENANT}/widgets/{widget['id']}/origins",
            json={"origin": "https://shop.editing.example"},
        )
        assert added.status_code == 201, added.text
    await page.get_by_role("button", name="Publish", exact=True).click()
    await page.get_by_role("button", name="Load the latest").click()
    # Loaded once the alert is gone: a click before it publishes on the stale revision again.
    await expect(page.get_by_text("Someone changed this widget")).to_be_hidden()
    await page.get_by_role("button", name="Publish", exact=True).click()
    await expect(page.get_by_text("Published as version 1.")).to_be_visible()


async def test_destructive_editor_actions_ask_first(editor: Editor, page: Page) -> None:
    widget = await new_widget(
        editor,
        "Confirm",
        origins=["https://a.editing.example"],
        config={"launcher": {"label": "v1"}},
    )
    async with api(editor.url) as client:
        published = await client.post(
            f"/api/v1/tenants/{TENANT}/widgets/{widget['id']}/publish",
            headers={"If-Match": f'"{widget["revision"]}"'},
        )
        assert published.status_code == 200, published.text
        changed = await client.put(
            f"/api/v1/tenants/{TENANT}/widgets/{widget['id']}/config",
            json={"launcher": {"label": "v2"}},
            headers={"If-Match": published.headers["etag"]},
        )
        assert changed.status_code == 200, changed.text
    await sign_in(page, editor)
    asked: list[str] = []

    await page.goto(editor.widget(widget, "origins"))
    remove = page.get_by_role("button", name="Remove https://a.editing.example")
    await remove.click()
    asked.append(await answer_confirm(page, "Remove origin", agree=False))
    await page.reload()
    await expect(remove).to_be_visible()
    await remove.click()
    asked.append(await answer_confirm(page, "Remove origin", agree=True))
    await expect(remove).to_have_count(0)

    await page.get_by_role("link", name="Secrets").click()
    await page.get_by_role("button", name="Generate a secret").click()
    # The widget is read again after the change: Done once it has been (it re-renders).
    await expect(page.get_by_text("A secret is set")).to_be_visible()
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_role("button", name="Rotate the secret")).to_be_focused()
    await page.get_by_role("button", name="Remove the secret").click()
    asked.append(await answer_confirm(page, "Remove the secret", agree=False))
    await page.reload()
    await expect(page.get_by_text("A secret is set")).to_be_visible()
    await page.get_by_role("button", name="Remove the secret").click()
    asked.append(await answer_confirm(page, "Remove the secret", agree=True))
    await expect(page.get_by_text("No secret yet.")).to_be_visible()

    await page.get_by_role("link", name="Publish & versions").click()
    await page.get_by_role("button", name="Compare with the draft").click()
    restore = page.get_by_role("button", name="Restore version 1 into the draft")
    await restore.click()
    asked.append(await answer_confirm(page, "Restore version 1", agree=False))
    await page.reload()
    await page.get_by_role("button", name="Compare with the draft").click()
    await expect(restore).to_be_visible()
    assert (await read_widget(editor, widget))["config"]["launcher"]["label"] == "v2"
    await restore.click()
    asked.append(await answer_confirm(page, "Restore version 1", agree=True))
    await expect(page.get_by_text("Restored into the draft.")).to_be_visible()
    assert (await read_widget(editor, widget))["config"]["launcher"]["label"] == "v1"
    assert [m.split("?")[0] for m in asked] == [
        "Remove https://a.editing.example",
        "Remove https://a.editing.example",
        "Remove the identity secret",
        "Remove the identity secret",
        "Restore version 1 into the draft",
        "Restore version 1 into the draft",
    ]


async def test_a_viewer_gets_no_import_check_nor_preview_check(editor: Editor, page: Page) -> None:
    widget = await new_widget(editor, "Viewed")
    await sign_in(page, editor, VIEWER)
    await page.goto(editor.widget(widget, "agent"))
    await expect(page.get_by_text("Your role can view this but not change it.")).to_be_visible()
    await expect(page.get_by_label("Exported code")).to_be_disabled()
    await expect(page.get_by_role("button", name="Check (dry run)")).to_be_disabled()
    await page.get_by_role("link", name="Embed").click()
    await expect(
        page.get_by_role("button", name="Check: run the snippet in the preview")
    ).to_be_disabled()


async def test_discarding_resets_the_advanced_json(editor: Editor, page: Page) -> None:
    widget = await new_widget(editor, "Advanced", config={"chatkit": {"locale": "fr-FR"}})
    await sign_in(page, editor)
    await page.goto(editor.widget(widget, "advanced"))
    text = page.get_by_label("ChatKit options (JSON)")
    await expect(text).to_have_value('{\n  "locale": "fr-FR"\n}')
    await text.fill('{"locale": "de-DE"}')
    await page.get_by_role("button", name="Apply to the draft").click()
    await page.get_by_role("button", name="Discard changes").click()
    await expect(text).to_have_value('{\n  "locale": "fr-FR"\n}')
