"""The command API: the inline stub's queue, double inclusion, several widgets."""

from __future__ import annotations

import time

import jwt
from playwright.async_api import Page

from kithost.widgets.config import Launcher, LauncherPosition, WidgetConfig
from tests.browser.conftest import Kithost
from tests.browser.helpers import STUB, Captured, Site, chat_frame, eventually, snippet

RECORD = """<script>
window.seen = [];
kithost('on', 'open', (data, widget) => seen.push(['open', widget]));
kithost('on', 'ready', (data, widget) => seen.push(['ready', widget]));
kithost('setContext', {plan: 'pro'});
kithost('open');
kithost('sendMessage', 'Where is my order?');
</script>"""


async def test_the_stub_queue_replays_in_order_and_double_inclusion_is_harmless(
    page: Page, kithost: Kithost, shop: Site, captured: Captured
) -> None:
    pk = await kithost.publish([shop.origin], WidgetConfig())
    tag = snippet(kithost.url, pk)
    await page.goto(shop.page(STUB + RECORD + tag + tag))
    frame = await chat_frame(page, pk)
    await page.wait_for_function("() => window.seen.length === 2")
    assert await page.evaluate("() => window.seen") == [["open", pk], ["ready", pk]]
    await frame.wait_for_function(
        "() => window.chatkit.calls.some(c => c.method === 'sendUserMessage')"
    )
    sent = await frame.evaluate(
        "() => window.chatkit.calls.filter(c => c.method === 'sendUserMessage').map(c => c.args)"
    )
    assert sent == [{"text": "Where is my order?"}]
    assert await page.get_by_role("button", name="Chat with us").count() == 1
    assert await page.locator("iframe").count() == 1
    assert captured.sessions[0]["context"] == {"plan": "pro"}


async def test_consent_and_identity(
    page: Page, kithost: Kithost, shop: Site, captured: Captured
) -> None:
    secret = "an identity secret of at least 32 bytes!"
    config = WidgetConfig(require_identity=True)
    pk = await kithost.publish([shop.origin], config, identity_secret=secret)
    token = jwt.encode({"sub": "42", "exp": int(time.time()) + 3600}, secret, "HS256")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(shop.page(STUB + snippet(kithost.url, pk, autoload="false")))
    await page.wait_for_function("() => window.kithost.scan")  # the loader has run
    # and loaded nothing but itself
    assert [url for url in requested if url.startswith(kithost.url)] == [f"{kithost.url}/embed.js"]

    await page.evaluate("t => { kithost('identify', t); kithost('load'); kithost('open') }", token)
    await chat_frame(page, pk)
    assert captured.sessions[0]["identity_token"] == token
    await eventually(lambda: "u:42" in end_users(captured, pk), "the user's events")


async def test_two_widgets_on_one_page_stay_separate(
    page: Page, kithost: Kithost, shop: Site, captured: Captured
) -> None:
    sales = await kithost.publish(
        [shop.origin],
        WidgetConfig(launcher=Launcher(label="Sales", position=LauncherPosition.bottom_left)),
    )
    support = await kithost.publish([shop.origin], WidgetConfig(launcher=Launcher(label="Support")))
    listen = (
        "<script>window.seen = [];"
        "kithost('on', 'open', (data, widget) => seen.push(widget));"
        f"kithost('{support}:open');</script>"
    )
    await page.goto(
        shop.page(STUB + listen + snippet(kithost.url, sales) + snippet(kithost.url, support))
    )
    await chat_frame(page, support)
    assert await page.evaluate("() => window.seen") == [support]
    assert await page.get_by_role("dialog", name="Support").is_visible()
    assert await page.get_by_role("dialog", name="Sales").is_hidden()
    assert await page.locator(f'iframe[src*="/w/{sales}"]').count() == 0

    await page.get_by_role("button", name="Sales").click()
    await chat_frame(page, sales)
    assert await page.evaluate("() => window.seen") == [support, sales]
    await eventually(lambda: "widget.opened" in captured.names(sales), "sales opened")
    await eventually(lambda: "widget.opened" in captured.names(support), "support opened")
    assert captured.names(support).count("widget.opened") == 1
    sales_users = await eventually(lambda: end_users(captured, sales), "sales' end user")
    support_users = await eventually(lambda: end_users(captured, support), "support's end user")
    assert sales_users.isdisjoint(support_users)


def end_users(captured: Captured, public_key: str) -> set[str]:
    return {b.end_user for b in captured.batches if b.public_key == public_key and b.end_user}
