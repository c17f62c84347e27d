"""The direct placement: ChatKit in the tenant's page, with that origin's domain key."""

from __future__ import annotations

from playwright.async_api import Page

from kithost.models import Placement
from kithost.widgets.config import WidgetConfig
from tests.browser.conftest import Kithost
from tests.browser.helpers import Captured, Site, chatkit_calls, eventually, snippet


async def test_direct_placement_uses_the_domain_key_of_the_page_origin(
    page: Page, kithost: Kithost, shop: Site, elsewhere: Site, captured: Captured
) -> None:
    pk = await kithost.publish(
        [(shop.origin, "domain_pk_shop"), (elsewhere.origin, "domain_pk_elsewhere")],
        WidgetConfig(placement=Placement.direct, chatkit={"startScreen": {"greeting": "Hi"}}),
    )
    container = '<section id="chat" style="height:500px" aria-label="Chat"></section>'
    await page.goto(shop.page(container + snippet(kithost.url, pk, container="#chat")))
    await page.wait_for_function("() => window.chatkit && window.chatkit.calls.length > 0")
    [options] = await chatkit_calls(page)
    assert options["api"] == {
        "url": f"{kithost.url}/v1/chatkit/{pk}",
        "domainKey": "domain_pk_shop",
    }
    assert options["startScreen"] == {"greeting": "Hi"}
    assert await page.locator("#chat > openai-chatkit").count() == 1
    assert await page.locator("iframe").count() == 0
    assert await page.locator('script[src^="https://cdn.platform.openai.com/"]').count() == 1

    assert await page.evaluate("() => window.chatkit.request({type: 'threads.list'})") == 200
    [headers] = captured.chatkit
    assert headers["origin"] == shop.origin  # the tenant's page calls the chat itself
    assert headers["authorization"].startswith("Bearer ")
    await eventually(lambda: "chatkit.ready" in captured.names(pk), "chatkit.ready sent")
