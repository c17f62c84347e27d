"""The launcher and the framed panel: keyboard only, published look, screenshots."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import BrowserContext, Page, Route, expect

from kithost.widgets.config import Launcher, LauncherPosition, WidgetConfig
from tests.browser.conftest import Kithost
from tests.browser.helpers import (
    Captured,
    Site,
    chat_frame,
    chatkit_calls,
    eventually,
    snippet,
    widget_snippet,
)

CHATKIT = {
    "theme": {
        "colorScheme": "dark",
        "radius": "soft",
        "color": {"accent": {"primary": "#0f766e", "level": 2}},
    },
    "startScreen": {
        "greeting": "How can we help?",
        "prompts": [{"label": "Track an order", "prompt": "Where is my order?", "icon": "map-pin"}],
    },
    "composer": {"placeholder": "Ask the shop"},
}
LAUNCHER = Launcher(
    label="Ask us",
    background="#0f766e",
    foreground="#ffffff",
    position=LauncherPosition.bottom_left,
)


async def test_keyboard_opens_closes_and_returns_focus(
    page: Page, kithost: Kithost, shop: Site, output: Path
) -> None:
    pk = await kithost.publish([shop.origin], WidgetConfig(chatkit=CHATKIT, launcher=LAUNCHER))
    await page.goto(shop.page(snippet(kithost.url, pk)))
    launcher = page.get_by_role("button", name="Ask us")
    await launcher.wait_for()
    assert await launcher.get_attribute("aria-expanded") == "false"
    assert (
        await launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(15, 118, 110)"
    )
    assert await launcher.evaluate("b => getComputedStyle(b).left") == "20px"
    await page.screenshot(path=output / "launcher-closed.png")

    await page.keyboard.press("Tab")
    await expect(launcher).to_be_focused()
    assert await launcher.evaluate("b => b.matches(':focus-visible')")
    await page.keyboard.press("Enter")
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_role("dialog", name="Ask us")
    await expect(panel).to_be_visible()
    frame = await chat_frame(page, pk)
    await page.wait_for_function("() => document.activeElement.tagName === 'IFRAME'")
    await frame.wait_for_selector("text=How can we help?")
    await page.screenshot(path=output / "panel-open.png")

    await page.keyboard.press("Escape")
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    await expect(panel).to_be_hidden()
    await expect(launcher).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(panel).to_be_visible()
    await page.keyboard.press("Escape")  # focus is on the launcher again
    await expect(panel).to_be_hidden()


async def test_the_frame_gets_the_published_theme_and_start_screen(
    page: Page, kithost: Kithost, shop: Site
) -> None:
    pk = await kithost.publish([shop.origin], WidgetConfig(chatkit=CHATKIT, launcher=LAUNCHER))
    await page.goto(shop.page(snippet(kithost.url, pk, open="true")))
    frame = await chat_frame(page, pk)
    assert await page.evaluate("() => document.activeElement === document.body")  # not stolen
    [options] = await chatkit_calls(frame)
    assert options["theme"] == CHATKIT["theme"]
    assert options["startScreen"] == CHATKIT["startScreen"]
    assert options["composer"] == CHATKIT["composer"]
    assert options["frameTitle"] == "Ask us"
    assert options["initialThread"] is None
    assert options["api"] == {
        "url": f"{kithost.url}/v1/chatkit/{pk}",
        "domainKey": "domain_pk_kithost",
    }


async def test_reduced_motion_is_honoured(page: Page, kithost: Kithost, shop: Site) -> None:
    pk = await kithost.publish([shop.origin], WidgetConfig(launcher=LAUNCHER))
    await page.emulate_media(reduced_motion="reduce")
    await page.goto(shop.page(snippet(kithost.url, pk, open="true")))
    panel = page.get_by_role("dialog", name="Ask us")
    await panel.wait_for()
    assert await panel.evaluate("p => getComputedStyle(p).animationName") == "none"
    await page.emulate_media(reduced_motion="no-preference")
    assert await panel.evaluate("p => getComputedStyle(p).animationName") == "kithost-in"


async def test_the_widget_script_shows_the_launcher_before_the_config_arrives(
    context: BrowserContext, page: Page, kithost: Kithost, shop: Site, captured: Captured
) -> None:
    held: list[Route] = []

    async def hold(route: Route) -> None:
        held.append(route)

    await context.route(f"{kithost.url}/v1/embed/*/config", hold)
    pk = await kithost.publish([shop.origin], WidgetConfig(chatkit=CHATKIT, launcher=LAUNCHER))
    await page.goto(shop.page(widget_snippet(kithost.url, pk)))
    launcher = page.get_by_role("button", name="Ask us")
    await launcher.wait_for()  # drawn from the script alone: the config is still held
    assert await launcher.evaluate("b => getComputedStyle(b).left") == "20px"
    await launcher.click()  # acted on once the config is there
    [config] = await eventually(lambda: held, "the config requested")
    assert await launcher.get_attribute("aria-expanded") == "false"
    assert "loader.loaded" not in captured.names(pk)

    await config.continue_()
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    frame = await chat_frame(page, pk)
    [options] = await chatkit_calls(frame)
    assert options["startScreen"] == CHATKIT["startScreen"]
    await eventually(
        lambda: {"loader.loaded", "launcher.shown"} <= set(captured.names(pk)), "loader events"
    )
