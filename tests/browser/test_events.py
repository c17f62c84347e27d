"""Events reach ``POST /v1/embed/{pk}/events`` in batches; the thread survives a reload."""

from __future__ import annotations

import json
import re

from playwright.async_api import Frame, Page, Route

from kithost.widgets.config import WidgetConfig
from tests.browser.conftest import Kithost
from tests.browser.helpers import Captured, Site, chat_frame, chatkit_calls, eventually, snippet

EVENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
LOADER_EVENTS = ["loader.loaded", "launcher.shown", "widget.opened", "widget.closed"]
CHAT_EVENTS = [
    "session.minted",
    "chatkit.ready",
    "chatkit.thread.change",
    "chatkit.response.start",
    "chatkit.response.end",
    "chatkit.log",
]


async def emit(frame: Frame, name: str, detail: object = None) -> None:
    await frame.evaluate("([name, detail]) => window.chatkit.emit(name, detail)", [name, detail])


async def test_events_arrive_in_batches_and_by_beacon_on_pagehide(
    page: Page, kithost: Kithost, shop: Site, captured: Captured
) -> None:
    pk = await kithost.publish([shop.origin], WidgetConfig())
    await page.goto(shop.page(snippet(kithost.url, pk)))
    await page.get_by_role("button", name="Chat with us").click()
    frame = await chat_frame(page, pk)
    await emit(frame, "chatkit.thread.change", {"threadId": "thr_1"})
    await emit(frame, "chatkit.response.start")
    await emit(frame, "chatkit.response.end")
    await emit(frame, "chatkit.log", {"name": "message.action", "data": {"secret": "no"}})
    await page.get_by_role("button", name="Chat with us").click()

    await eventually(
        lambda: set(LOADER_EVENTS + CHAT_EVENTS) <= set(captured.names(pk)), "every event"
    )
    names = captured.names(pk)
    assert names.count("widget.opened") == 1
    assert len(captured.batches) < len(names)  # batched, not one request per event
    events = captured.events(pk)
    assert all(EVENT_ID.fullmatch(e["id"]) for e in events)
    assert len({e["id"] for e in events}) == len(events)
    assert all(isinstance(e["time"], int) and isinstance(e["data"], dict) for e in events)
    by_name = {e["name"]: e["data"] for e in events}
    assert by_name["chatkit.thread.change"] == {"threadId": "thr_1"}
    assert by_name["chatkit.log"] == {"name": "message.action"}
    assert by_name["loader.loaded"] == {"version": 1, "placement": "framed"}
    end_user = next(b.end_user for b in captured.batches if "session.minted" in b.names())
    assert end_user is not None
    assert end_user.startswith("a:anon_")
    assert all(b.content_type == "application/json" for b in captured.batches)
    # The real endpoint kept every event the loader and the frame sent.
    assert {(b.status, len(b.answer["dropped"])) for b in captured.batches} == {(202, 0)}

    await emit(frame, "chatkit.response.start")
    # On pagehide what is left goes by beacon. Playwright does not report the requests of a
    # document being unloaded, so the event is dispatched to a live one.
    await frame.evaluate("() => dispatchEvent(new PageTransitionEvent('pagehide'))")
    beacon = await eventually(
        lambda: [b for b in captured.batches if b.content_type.startswith("text/plain")],
        "a beacon",
    )
    assert beacon[0].names() == ["chatkit.response.start"]


async def test_the_thread_is_kept_per_widget_and_end_user(
    page: Page, kithost: Kithost, shop: Site
) -> None:
    pk = await kithost.publish([shop.origin], WidgetConfig())
    url = shop.page(snippet(kithost.url, pk, open="true"))
    await page.goto(url)
    await emit(await chat_frame(page, pk), "chatkit.thread.change", {"threadId": "thr_kept"})

    await page.goto(url)
    [options] = await chatkit_calls(await chat_frame(page, pk))
    assert options["initialThread"] == "thr_kept"

    await page.evaluate("() => kithost('shutdown')")  # forgets the end user
    await page.goto(url)
    [options] = await chatkit_calls(await chat_frame(page, pk))
    assert options["initialThread"] is None


async def test_a_batch_refused_under_load_is_sent_again(
    page: Page, kithost: Kithost, shop: Site, captured: Captured
) -> None:
    """A 429 that asks to wait a moment (the process or the widget has its share of batches
    under way) is retried after ``Retry-After``: no event is lost to load."""
    pk = await kithost.publish([shop.origin], WidgetConfig())
    refused: list[str] = []

    async def refuse_first(route: Route) -> None:
        if route.request.method != "POST" or refused:
            await route.fallback()  # to the capturing route, then the real endpoint
            return
        refused.append(route.request.post_data or "")
        await route.fulfill(
            status=429,
            headers={
                "Retry-After": "1",
                "Access-Control-Allow-Origin": shop.origin,
                "Access-Control-Expose-Headers": "Retry-After",
            },
            content_type="application/problem+json",
            body='{"status": 429, "code": "rate_limited"}',
        )

    await page.route(f"{kithost.url}/v1/embed/*/events", refuse_first)
    await page.goto(shop.page(snippet(kithost.url, pk)))
    await eventually(lambda: "loader.loaded" in captured.names(pk), "the refused batch, again")
    [body] = refused
    assert json.loads(body)["events"] == captured.batches[0].events, "the same batch"
    assert captured.batches[0].status == 202
