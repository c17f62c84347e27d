"""ChatKit widget actions follow the widget's action mapping."""

from __future__ import annotations

from playwright.async_api import BrowserContext, Page, Route

from kithost.widgets.config import WidgetConfig
from tests.browser.conftest import Kithost
from tests.browser.helpers import Site, chat_frame, chatkit_calls, snippet

ACTIONS = {
    "order.open": {"kind": "open_url", "url": "https://orders.example.com/o/{order}"},
    "order.ask": {"kind": "send_message", "text": "Where is order {order}?"},
    "order.cancel": {"kind": "forward"},
    "order.hover": {"kind": "ignore"},
}


async def test_widget_actions_follow_the_mapping(
    context: BrowserContext, page: Page, kithost: Kithost, shop: Site
) -> None:
    async def orders(route: Route) -> None:
        await route.fulfill(body="order", content_type="text/plain")

    await context.route("https://orders.example.com/**", orders)
    pk = await kithost.publish([shop.origin], WidgetConfig.model_validate({"actions": ACTIONS}))
    await page.goto(shop.page(snippet(kithost.url, pk, open="true")))
    frame = await chat_frame(page, pk)
    act = "([type, payload]) => window.chatkit.action(type, payload, 'itm_1')"

    async with context.expect_page() as popup:
        await frame.evaluate(act, ["order.open", {"order": "42/7"}])
    assert (await popup.value).url == "https://orders.example.com/o/42%2F7"
    await frame.evaluate(act, ["order.ask", {"order": "42"}])
    await frame.evaluate(act, ["order.hover", {"order": "42"}])
    await frame.evaluate(act, ["order.cancel", {"order": "42"}])
    await frame.evaluate(act, ["unmapped", {}])  # Kithost's server decides

    assert await chatkit_calls(frame, "sendUserMessage") == [{"text": "Where is order 42?"}]
    assert await chatkit_calls(frame, "sendCustomAction") == [
        {"action": {"type": "order.cancel", "payload": {"order": "42"}}, "itemId": "itm_1"},
        {"action": {"type": "unmapped", "payload": {}}, "itemId": "itm_1"},
    ]


async def test_an_action_named_like_an_object_member_is_mapped_or_forwarded(
    page: Page, kithost: Kithost, shop: Site
) -> None:
    """Only the mapping's own entries count: an action typed ``constructor`` or ``toString``
    finds no member of ``Object.prototype`` (which has no ``kind``: the action was lost)."""
    actions = {"valueOf": {"kind": "send_message", "text": "Value of {order}?"}}
    pk = await kithost.publish([shop.origin], WidgetConfig.model_validate({"actions": actions}))
    await page.goto(shop.page(snippet(kithost.url, pk, open="true")))
    frame = await chat_frame(page, pk)
    act = "([type, payload]) => window.chatkit.action(type, payload, 'itm_1')"

    for action_type in ("constructor", "toString", "hasOwnProperty", "__proto__", "valueOf"):
        await frame.evaluate(act, [action_type, {"order": "42"}])

    assert await chatkit_calls(frame, "sendUserMessage") == [{"text": "Value of 42?"}]
    assert [call["action"]["type"] for call in await chatkit_calls(frame, "sendCustomAction")] == [
        "constructor",
        "toString",
        "hasOwnProperty",
        "__proto__",
    ]
