"""A chat request refused 503 ``server_busy`` (the API process streams
``KITHOST_MAX_OPEN_ANSWERS`` answers already, and refuses one more before anything is
written) is sent again by the loader's ``fetch`` after its ``Retry-After``, framed and
direct, at most three times in all; any other refusal is ChatKit's at once. Against a
``kithost serve`` of the module's own that streams one answer at a time, on the session's
database; the model is the fake OpenAI server, whose held stream keeps that answer open.
The page's clock is Playwright's, paused: the loader's waits pass only as the test runs it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest
from playwright.async_api import BrowserContext, Frame, Page, Route

from kithost.models import Placement
from kithost.settings import Settings
from kithost.widgets.config import WidgetConfig
from tests.browser.conftest import Kithost
from tests.browser.helpers import STUB, WAIT_SECONDS, Site, chat_frame, snippet
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI
from tests.visitor.helpers import Server

PLACEMENTS = pytest.mark.parametrize("placement", [Placement.framed, Placement.direct])
RECORD = """
const send = window.fetch;
window.chatRequests = [];
window.fetch = async (input, init) => {
  const sentAt = Date.now();
  const response = await send(input, init);
  if (String(input).includes('/v1/chatkit/')) chatRequests.push([sentAt, response.status]);
  return response;
};
"""
"""Every document records its chat requests: when each was sent (on the page's clock) and
what it was answered."""
INPUT = {
    "content": [{"type": "input_text", "text": "Hi"}],
    "attachments": [],
    "inference_options": {},
}
CREATE = json.dumps({"type": "threads.create", "params": {"input": INPUT}})
"""A new thread's message, as ChatKit sends it (for ``chatkit.request``)."""


@pytest.fixture(scope="module")
async def busy(
    browser_settings: Settings, kithost: Kithost, openai: FakeOpenAI
) -> AsyncIterator[Kithost]:
    """Kithost streaming at most one answer at a time."""
    server = Server(
        browser_settings,
        browser_settings.data_dir / "serve-busy.log",
        KITHOST_MAX_OPEN_ANSWERS="1",
        KITHOST_FRAME_DOMAIN_KEY="domain_pk_kithost",
        KITHOST_OPENAI_BASE_URL=openai.base_url,
        KITHOST_OPENAI_API_KEY=openai.api_key,
    )
    try:
        async with httpx2.AsyncClient() as client:
            await server.wait_ready(client)
        yield dataclasses.replace(kithost, url=server.url)
    finally:
        server.stop()


@pytest.fixture
def model(openai: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The model, its next stream held after its first word: that answer stays open."""
    openai.reset()
    openai.hold_stream(after=1)
    yield openai
    openai.reset()


async def open_chat(
    context: BrowserContext,
    page: Page,
    kithost: Kithost,
    shop: Site,
    placement: Placement,
    paused: bool = True,
) -> Frame | Page:
    """The document running ChatKit for a new widget inline in a shop page, recording its
    chat requests; the page's clock paused unless not ``paused``."""
    if paused:
        await context.clock.install()
    await context.add_init_script(RECORD)
    config = WidgetConfig(placement=placement)
    pk = await kithost.publish([(shop.origin, "domain_pk_shop")], config)
    container = '<section id="chat" style="height:500px" aria-label="Chat"></section>'
    await page.goto(shop.page(container + STUB + snippet(kithost.url, pk, container="#chat")))
    if placement is Placement.framed:
        chat: Frame | Page = await chat_frame(page, pk)
    else:
        await page.wait_for_function("() => window.chatkit && window.chatkit.calls.length > 0")
        chat = page
    if paused:
        await context.clock.pause_at(await page.evaluate("() => Date.now() / 1000 + 1"))
    return chat


async def requests_once(
    context: BrowserContext, chat: Frame | Page, count: int, run_clock: bool = False
) -> list[tuple[int, int]]:
    """The document's chat requests (sent at, status) once there are ``count``; with
    ``run_clock``, the page's clock is run on a second at a time meanwhile."""
    deadline = time.monotonic() + WAIT_SECONDS
    while (
        len(sent := [(at, status) for at, status in await chat.evaluate("() => chatRequests")])
        < count
    ):
        assert time.monotonic() < deadline, f"chat requests {sent}, not {count}"
        if run_clock:
            await context.clock.run_for(1000)
        await asyncio.sleep(0.05)
    return sent


@PLACEMENTS
async def test_a_message_refused_while_busy_is_answered_after_retry_after(
    context: BrowserContext,
    page: Page,
    busy: Kithost,
    shop: Site,
    model: FakeOpenAI,
    placement: Placement,
) -> None:
    chat = await open_chat(context, page, busy, shop, placement)
    await chat.evaluate("() => { window.first = chatkit.converse('One'); }")
    await requests_once(context, chat, 1)  # its answer streams, held: the one place is taken
    await chat.evaluate("() => { window.second = chatkit.converse('Two'); }")
    [_, (refused_at, status)] = await requests_once(context, chat, 2)
    assert status == 503
    model.release()
    assert await chat.evaluate("() => window.first") == DEFAULT_REPLY_TEXT

    [_, _, (retried_at, status)] = await requests_once(context, chat, 3, run_clock=True)
    assert status == 200
    assert await chat.evaluate("() => window.second") == DEFAULT_REPLY_TEXT
    assert 5000 <= retried_at - refused_at < 6000  # Retry-After: 5, and under a second of jitter


async def test_a_chat_still_busy_after_three_tries_gets_the_refusal(
    context: BrowserContext, page: Page, busy: Kithost, shop: Site, model: FakeOpenAI
) -> None:
    chat = await open_chat(context, page, busy, shop, Placement.framed)
    await chat.evaluate("() => { window.first = chatkit.converse('One'); }")
    await requests_once(context, chat, 1)
    await chat.evaluate(f"() => {{ window.refused = chatkit.request({CREATE}); }}")

    sent = await requests_once(context, chat, 4, run_clock=True)
    assert [status for _, status in sent] == [200, 503, 503, 503]
    assert await chat.evaluate("() => window.refused") == 503  # ChatKit's to show
    await context.clock.run_for(30_000)
    assert await requests_once(context, chat, 4) == sent
    model.release()
    assert await chat.evaluate("() => window.first") == DEFAULT_REPLY_TEXT


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (503, "application/problem+json", '{"status": 503, "code": "database_unavailable"}'),
        (502, "text/html", "<h1>502 Bad Gateway</h1>"),  # a proxy's
    ],
)
async def test_any_other_refusal_is_chatkits_at_once(
    context: BrowserContext,
    page: Page,
    busy: Kithost,
    shop: Site,
    status: int,
    content_type: str,
    body: str,
) -> None:
    async def refuse(route: Route) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        origin = route.request.headers["origin"]
        await route.fulfill(
            status=status,
            body=body,
            content_type=content_type,
            headers={
                "Retry-After": "1",
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Expose-Headers": "Retry-After",
            },
        )

    await context.route(f"{busy.url}/v1/chatkit/*", refuse)
    chat = await open_chat(context, page, busy, shop, Placement.direct, paused=False)

    assert await chat.evaluate(f"() => chatkit.request({CREATE})") == status
    assert [answered for _, answered in await requests_once(context, chat, 1)] == [status]
