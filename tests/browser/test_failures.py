"""What goes wrong is reported to the API and shown to the visitor, never a blank box."""

from __future__ import annotations

import httpx2
from playwright.async_api import BrowserContext, Page, Route

from kithost.widgets.config import WidgetConfig
from tests.browser.conftest import CDN, Kithost, serve_standin
from tests.browser.helpers import (
    STUB,
    UNAVAILABLE,
    Captured,
    Site,
    chat_frame,
    eventually,
    snippet,
    widget_snippet,
)

LISTEN = "<script>window.errors = []; kithost('on', 'error', e => errors.push(e.kind));</script>"


async def test_a_foreign_origin_gets_no_chat_and_reports_a_client_error(
    context: BrowserContext,
    page: Page,
    kithost: Kithost,
    shop: Site,
    elsewhere: Site,
    captured: Captured,
) -> None:
    pk = await kithost.publish([shop.origin], WidgetConfig())
    # Both snippets at once; the widget's own script draws its launcher from the preset,
    # then takes it away.
    own = await context.new_page()
    await page.goto(elsewhere.page(STUB + LISTEN + snippet(kithost.url, pk)))
    await own.goto(elsewhere.page(STUB + LISTEN + widget_snippet(kithost.url, pk)))
    errors = await eventually(lambda: captured.errors(pk)[1:] and captured.errors(pk), "errors")
    for error in errors:
        assert error["kind"] == "config_refused"
        assert elsewhere.origin in error["message"]
        assert "allowed origins" in error["hint"]
    for batch in captured.batches:
        assert batch.content_type.startswith("text/plain")  # CORS refuses JSON from the page
        assert batch.status == 202
    # The tenant sees it once: one refusal a minute per widget, origin and visitor's address.
    assert sorted(batch.answer["accepted"] for batch in captured.batches) == [0, 1]
    assert "launcher.shown" not in captured.names(pk)
    for each in (page, own):
        assert await each.evaluate("() => window.errors") == ["config_refused"]
        assert await each.locator("button, iframe, .kithost-panel").count() == 0

    async with httpx2.AsyncClient() as client:
        frame = await client.get(f"{kithost.url}/w/{pk}")
    assert frame.headers["content-security-policy"].endswith(f"; frame-ancestors {shop.origin}")


async def test_the_cdn_timing_out_shows_the_fallback_and_retry_recovers(
    context: BrowserContext, page: Page, kithost: Kithost, shop: Site, captured: Captured
) -> None:
    held: list[Route] = []

    async def hold(route: Route) -> None:
        held.append(route)  # never answered: ChatKit's script times out

    await context.unroute(CDN)
    await context.route(CDN, hold)
    pk = await kithost.publish([shop.origin], WidgetConfig())
    await page.goto(shop.page(STUB + LISTEN + snippet(kithost.url, pk, open="true")))
    frame = page.frame_locator(f'iframe[src*="/w/{pk}#"]')
    alert = frame.get_by_role("alert")
    await alert.wait_for()
    assert await alert.inner_text() == f"{UNAVAILABLE} Try again"
    [error] = await eventually(lambda: captured.errors(pk), "a client error")
    assert error["kind"] == "script_timeout"
    assert "frame" not in error  # the events contract's frame is a stack frame
    assert all(batch.answer["dropped"] == [] for batch in captured.batches)
    assert "Content-Security-Policy" in error["hint"]
    await page.wait_for_function("() => window.errors.length === 1")
    assert await page.evaluate("() => window.errors") == ["script_timeout"]

    for route in held:  # the network gives up at last (else Chromium's cache lock would
        await route.abort("timedout")  # hold the retry's request of the same URL)
    await context.unroute(CDN)
    await context.route(CDN, serve_standin)
    await frame.get_by_role("button", name="Try again").click()
    await chat_frame(page, pk)
    assert await alert.count() == 0
