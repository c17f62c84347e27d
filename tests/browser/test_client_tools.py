"""Client tools in Chromium, framed and direct: the model's call reaches the page's handler
(``kithost('on', 'tool:NAME', fn)``, through the loader: by ``postMessage`` from Kithost's
frame, directly in the page), its answer goes back through ChatKit
(``threads.add_client_tool_output``) to the model, which answers from it. No handler, a
throwing one or one that never answers within the tool's timeout is an error result the
model explains (and a ``client.error``), never a chat left waiting. The stand-in talks to
Kithost's real ChatKit endpoint; the model is the fake OpenAI server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Frame, Page

from kithost.models import Placement
from kithost.widgets.config import WidgetConfig
from tests.browser.conftest import Kithost
from tests.browser.helpers import (
    STUB,
    Captured,
    Site,
    chat_frame,
    chatkit_calls,
    eventually,
    snippet,
)
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI

TIMEOUT_SECONDS = 5
CART_TOOL = {
    "type": "client",
    "id": "cart",
    "name": "get_cart",
    "description": "The visitor's shopping cart.",
    "parameters": {"type": "object", "properties": {"currency": {"type": "string"}}},
    "timeout_seconds": TIMEOUT_SECONDS,
}
ARGUMENTS = {"currency": "EUR"}
CONVERSE = "() => { window.answered = chatkit.converse('What is in my cart?'); }"
PLACEMENTS = pytest.mark.parametrize("placement", [Placement.framed, Placement.direct])


@pytest.fixture
async def chatting(
    context: BrowserContext, kithost: Kithost, openai: FakeOpenAI
) -> AsyncIterator[FakeOpenAI]:
    """The stand-in talks to Kithost's real ChatKit endpoint; the model calls ``get_cart``."""
    await context.unroute(f"{kithost.url}/v1/chatkit/*")
    openai.reset()
    openai.call_function("get_cart", ARGUMENTS)
    yield openai
    openai.reset()


async def open_chat(
    page: Page,
    kithost: Kithost,
    shop: Site,
    placement: Placement,
    handler: str | None,
    extra: str = "",
) -> tuple[str, Frame | Page]:
    """A shop page with the widget inline, ``handler`` (script) registered for
    ``tool:get_cart`` and ``extra`` HTML; the widget's key and the document running ChatKit."""
    config = WidgetConfig.model_validate({"placement": placement, "agent": {"tools": [CART_TOOL]}})
    pk = await kithost.publish([(shop.origin, "domain_pk_shop")], config)
    register = (
        "" if handler is None else f"<script>kithost('on', 'tool:get_cart', {handler})</script>"
    )
    container = '<section id="chat" style="height:500px" aria-label="Chat"></section>'
    widget = snippet(kithost.url, pk, container="#chat")
    await page.goto(shop.page(container + STUB + register + extra + widget))
    if placement is Placement.framed:
        return pk, await chat_frame(page, pk)
    await page.wait_for_function("() => window.chatkit && window.chatkit.calls.length > 0")
    return pk, page


async def converse(chat: Frame | Page) -> str:
    await chat.evaluate(CONVERSE)
    reply: str = await chat.evaluate("() => window.answered")
    return reply


def outputs(openai: FakeOpenAI) -> list[Any]:
    return [json.loads(output) for output in openai.function_outputs]


async def assert_times_out(
    context: BrowserContext,
    chat: Frame | Page,
    openai: FakeOpenAI,
    captured: Captured,
    pk: str,
) -> None:
    """Once the tool's timeout has passed (on Playwright's clock), the model gets the error
    and answers, and the page's analytics get a ``client.error``."""
    await context.clock.fast_forward(TIMEOUT_SECONDS * 1000 + 500)
    assert await chat.evaluate("() => window.answered") == DEFAULT_REPLY_TEXT
    await assert_failed(openai, captured, pk, f"no answer within {TIMEOUT_SECONDS} s")


async def assert_failed(openai: FakeOpenAI, captured: Captured, pk: str, error: str) -> None:
    """The model got the tool's failure as its result, and the page's analytics a
    ``client.error`` saying the same."""
    message = f"The page's get_cart tool failed: {error}"
    assert outputs(openai) == [{"error": message}]
    [reported] = await eventually(lambda: captured.errors(pk), "client.error sent")
    assert (reported["kind"], reported["message"]) == ("client_tool_failed", message)


@PLACEMENTS
async def test_the_handlers_answer_reaches_the_model(
    page: Page, kithost: Kithost, shop: Site, chatting: FakeOpenAI, placement: Placement
) -> None:
    handler = (
        "(args, who) => ({ items: 2, currency: args.currency, user: who.user, widget: who.widget })"
    )
    pk, chat = await open_chat(page, kithost, shop, placement, handler)

    assert await converse(chat) == DEFAULT_REPLY_TEXT

    [output] = outputs(chatting)
    assert output == {"items": 2, "currency": "EUR", "user": output["user"], "widget": pk}
    assert output["user"].startswith("a:anon_")  # the session's end user
    [call] = await chatkit_calls(chat, "clientTool")
    assert call == {"name": "get_cart", "params": ARGUMENTS, "result": output}


@PLACEMENTS
async def test_an_async_handler_is_awaited(
    page: Page, kithost: Kithost, shop: Site, chatting: FakeOpenAI, placement: Placement
) -> None:
    handler = (
        "async (args) => {"
        " await new Promise((r) => setTimeout(r, 50)); return { items: [args.currency] }; }"
    )
    _, chat = await open_chat(page, kithost, shop, placement, handler)

    assert await converse(chat) == DEFAULT_REPLY_TEXT

    assert outputs(chatting) == [{"items": ["EUR"]}]


@PLACEMENTS
@pytest.mark.parametrize(
    ("handler", "error"),
    [
        ("() => { throw new Error('cart service down'); }", "cart service down"),
        ("async () => { throw new Error('rejected'); }", "rejected"),
        (None, "no handler (kithost('on', 'tool:get_cart', fn))"),
    ],
)
async def test_a_missing_or_failing_handler_is_an_error_the_model_sees(
    page: Page,
    kithost: Kithost,
    shop: Site,
    captured: Captured,
    chatting: FakeOpenAI,
    placement: Placement,
    handler: str | None,
    error: str,
) -> None:
    pk, chat = await open_chat(page, kithost, shop, placement, handler)

    assert await converse(chat) == DEFAULT_REPLY_TEXT

    await assert_failed(chatting, captured, pk, error)


@PLACEMENTS
async def test_a_handler_that_never_answers_times_out(
    context: BrowserContext,
    page: Page,
    kithost: Kithost,
    shop: Site,
    captured: Captured,
    chatting: FakeOpenAI,
    placement: Placement,
) -> None:
    await context.clock.install()
    handler = "() => new Promise(() => { window.toolCalled = true; })"
    pk, chat = await open_chat(page, kithost, shop, placement, handler)

    await chat.evaluate(CONVERSE)
    await page.wait_for_function("() => window.toolCalled === true")
    assert chatting.function_outputs == []  # waiting for the page
    await assert_times_out(context, chat, chatting, captured, pk)


async def test_another_frame_of_the_page_cannot_answer_a_call(
    context: BrowserContext,
    page: Page,
    kithost: Kithost,
    shop: Site,
    elsewhere: Site,
    captured: Captured,
    chatting: FakeOpenAI,
) -> None:
    """The frame takes answers from the loader only (its origin and window), by call id."""
    await context.clock.install()
    other = elsewhere.page("")
    spy = (
        "<script>addEventListener('message', (e) => {"
        " if (e.data && e.data.type === 'tool') window.callId = e.data.id; });</script>"
        f'<iframe title="Other" src="{other}"></iframe>'
    )
    never = "() => new Promise(() => {})"
    pk, chat = await open_chat(page, kithost, shop, Placement.framed, never, spy)
    await chat.evaluate(CONVERSE)
    call_id = await (await page.wait_for_function("() => window.callId")).json_value()

    forger = page.frame(url=other)
    assert forger is not None
    await forger.evaluate(
        """([pk, id, api]) => {
          const forged = { kithost: pk, type: 'tool', id, result: { forged: true } };
          for (let i = 0; i < parent.frames.length; i++) parent.frames[i].postMessage(forged, api);
        }""",
        [pk, call_id, kithost.url],
    )
    await assert_times_out(context, chat, chatting, captured, pk)


async def test_a_tool_named_like_an_object_member_gets_the_default_timeout(
    page: Page, kithost: Kithost, shop: Site
) -> None:
    """A tool the config does not time (a newer version's) waits the default 10 s, even when
    its name is an ``Object.prototype`` member: ``constructor`` once timed out at once."""
    pk = await kithost.publish([shop.origin], WidgetConfig())
    handler = "<script>kithost('on', 'tool:constructor', () => new Promise((done) => "
    handler += "setTimeout(() => done({built: true}), 300)))</script>"
    await page.goto(shop.page(STUB + handler + snippet(kithost.url, pk, open="true")))
    frame = await chat_frame(page, pk)
    result = await frame.evaluate(
        "() => document.querySelector('openai-chatkit').options"
        ".onClientTool({name: 'constructor', params: {}})"
    )
    assert result == {"built": True}
