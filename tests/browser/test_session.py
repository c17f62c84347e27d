"""The session token reaches ChatKit's ``fetch``, with the page context, and is refreshed."""

from __future__ import annotations

import base64
import json

from playwright.async_api import BrowserContext, Page

from kithost.models import WidgetMode
from kithost.widgets.config import Hosted, WidgetConfig
from tests.browser.conftest import Kithost
from tests.browser.helpers import (
    STUB,
    UNAVAILABLE,
    Captured,
    Site,
    chat_frame,
    chatkit_calls,
    eventually,
    snippet,
)
from tests.fakes.openai_server import FakeOpenAI

CONTEXT = {"page": "/checkout", "cart": {"items": 2, "note": "ünïcödé"}}
REQUEST = "() => window.chatkit.request({type: 'threads.list', params: {}})"


def decoded(header: str) -> object:
    assert "=" not in header
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))


async def test_the_token_reaches_fetch_and_is_refreshed_before_it_expires(
    context: BrowserContext, page: Page, kithost: Kithost, shop: Site, captured: Captured
) -> None:
    await context.clock.install()
    pk = await kithost.publish([shop.origin], WidgetConfig())
    set_context = f"<script>kithost('setContext', {json.dumps(CONTEXT)})</script>"
    await page.goto(shop.page(STUB + set_context + snippet(kithost.url, pk, open="true")))
    frame = await chat_frame(page, pk)
    [first] = captured.sessions
    assert first["device_id"].startswith("anon_")
    assert first["embedder"] == shop.origin  # the page framing the chat, for the mint to check

    assert await frame.evaluate(REQUEST) == 200
    [headers] = captured.chatkit
    assert headers["authorization"].startswith("Bearer ey")  # a JWT
    token = headers["authorization"].removeprefix("Bearer ")
    assert decoded(headers["x-kithost-context"]) == CONTEXT
    assert headers["origin"] == kithost.url  # the framed page calls from Kithost's origin

    await frame.evaluate(REQUEST)
    assert len(captured.sessions) == 1  # still fresh: no new session
    assert captured.chatkit[1]["authorization"] == f"Bearer {token}"

    await context.clock.fast_forward("14:30")  # the token lives 15 minutes
    assert await frame.evaluate(REQUEST) == 200
    assert captured.sessions[1] == {"current": token, "context": CONTEXT, "embedder": shop.origin}
    refreshed = captured.chatkit[2]["authorization"].removeprefix("Bearer ")
    assert refreshed != token
    minted = await eventually(
        lambda: [e for e in captured.events(pk) if e["name"] == "session.minted"][1:],
        "the refresh reported",
    )
    assert minted[0]["data"] == {"mode": "self_hosted", "refresh": True}


async def test_a_hosted_widget_gets_client_secrets_from_the_session_endpoint(
    page: Page, kithost: Kithost, shop: Site, captured: Captured, openai: FakeOpenAI
) -> None:
    hosted = Hosted(workflow_id="wf_shop", state_variables=["plan"])
    pk = await kithost.publish([shop.origin], WidgetConfig(mode=WidgetMode.hosted, hosted=hosted))
    set_context = "<script>kithost('setContext', {plan: 'pro', secret: 'not a state variable'})"
    await page.goto(shop.page(STUB + set_context + "</script>" + snippet(kithost.url, pk)))
    await page.get_by_role("button", name="Chat with us").click()
    frame = await chat_frame(page, pk)
    [options] = await chatkit_calls(frame)
    assert options["api"] == {}  # getClientSecret only: a function

    first = await frame.evaluate("() => window.chatkit.clientSecret(null)")
    assert len(captured.sessions) == 1  # the secret minted when the chat started
    second = await frame.evaluate("s => window.chatkit.clientSecret(s)", first)
    assert second != first
    assert captured.sessions[1]["current"] == first
    created = [r.json for r in openai.requests if r.path == "/v1/chatkit/sessions"]
    assert created[-1]["workflow"]["state_variables"] == {"plan": "pro"}


async def test_a_retired_workflow_shows_the_fallback_and_reports_the_way_out(
    page: Page, kithost: Kithost, shop: Site, captured: Captured, openai: FakeOpenAI
) -> None:
    """OpenAI shut Agent Builder down on 2026-11-30: a hosted widget whose workflow no longer
    runs shows the visitor the usual fallback, and the client error says to convert it."""
    openai.retired_workflows.add("wf_retired")
    hosted = Hosted(workflow_id="wf_retired")
    pk = await kithost.publish([shop.origin], WidgetConfig(mode=WidgetMode.hosted, hosted=hosted))
    await page.goto(shop.page(STUB + snippet(kithost.url, pk, open="true")))
    alert = page.frame_locator(f'iframe[src*="/w/{pk}#"]').get_by_role("alert")
    await alert.wait_for()
    assert await alert.inner_text() == f"{UNAVAILABLE} Try again"
    [error] = await eventually(lambda: captured.errors(pk), "a client error")
    assert error["kind"] == "session_refused"
    assert error["message"].startswith("502 hosted_workflow_unavailable")
    assert "convert this widget" in error["hint"]
