"""Fixture sites, snippets, what the browser sent and the dashboard's questions answered, for
the browser tests."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from playwright.async_api import Frame, Page, Request, Route, expect

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP localhost 127.0.0.1",
]
"""Debian's Chromium, kept off the (closed) network; ``localhost`` is always IPv4 loopback."""
STUB = (
    "<script>window.kithost = window.kithost || "
    "function(){(kithost.q = kithost.q || []).push(arguments)}</script>"
)
UNAVAILABLE = "Chat is unavailable right now — try again."
WAIT_SECONDS = 15.0


class Site:
    """A web server on loopback: an origin of its own serving the pages tests give it."""

    def __init__(self) -> None:
        pages: dict[str, bytes] = {}
        self._pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body or b"not found")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, body: str) -> str:
        """The URL of a new page of this site with ``body`` in a plain shop layout."""
        path = f"/{secrets.token_hex(6)}.html"
        html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>'
            "</head><body><main><h1>A shop</h1><p>Products.</p></main>"
            f"{body}</body></html>"
        )
        self._pages[path] = html.encode()
        return self.origin + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def snippet(kithost: str, public_key: str, **data: str) -> str:
    """The older tag (``/embed.js``, which fetches the config first), with ``data-*``."""
    return f'<script async src="{kithost}/embed.js"{_data(widget=public_key, **data)}></script>'


def widget_snippet(kithost: str, public_key: str, **data: str) -> str:
    """The tag tenants paste: the widget's own loader (``/embed/{pk}.js``), with ``data-*``."""
    return f'<script async src="{kithost}/embed/{public_key}.js"{_data(**data)}></script>'


def _data(**data: str) -> str:
    return "".join(f' data-{name}="{value}"' for name, value in data.items())


@dataclass(frozen=True)
class Batch:
    public_key: str
    content_type: str
    end_user: str | None
    events: list[dict[str, Any]]
    status: int
    """What the real events endpoint answered."""
    answer: dict[str, Any]

    def names(self) -> list[str]:
        return [event["name"] for event in self.events]


@dataclass
class Captured:
    """What the browser sent to the endpoints that are not in this branch."""

    batches: list[Batch] = field(default_factory=list)
    chatkit: list[dict[str, str]] = field(default_factory=list)
    """Headers of each request to ``/v1/chatkit/{pk}``."""
    sessions: list[dict[str, Any]] = field(default_factory=list)
    """Bodies of each ``POST /v1/embed/{pk}/session``."""

    def events(self, public_key: str) -> list[dict[str, Any]]:
        return [e for b in self.batches if b.public_key == public_key for e in b.events]

    def names(self, public_key: str) -> list[str]:
        return [event["name"] for event in self.events(public_key)]

    def errors(self, public_key: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events(public_key) if e["name"] == "client.error"]

    async def on_events(self, route: Route) -> None:
        """Record the batch, pass it on to the real endpoint, and record its answer."""
        request = route.request
        if request.method != "POST":
            await route.continue_()
            return
        response = await route.fetch()
        body = json.loads(request.post_data or "{}")
        self.batches.append(
            Batch(
                public_key=request.url.split("/")[-2],
                content_type=request.headers.get("content-type", ""),
                end_user=body["end_user"],
                events=body["events"],
                status=response.status,
                answer=await response.json(),
            )
        )
        await route.fulfill(response=response)

    async def on_chatkit(self, route: Route) -> None:
        request = route.request
        if request.method == "POST":
            self.chatkit.append(await request.all_headers())
        await route.fulfill(status=200, json={"data": []}, headers=_cors(request))

    def on_request(self, request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/session"):
            self.sessions.append(json.loads(request.post_data or "{}"))


def _cors(request: Request) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": request.headers.get("origin", "*"),
        "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Kithost-Context",
        "Access-Control-Allow-Methods": "POST",
    }


async def eventually(probe: Callable[[], T | None], what: str) -> T:
    """``probe()``'s first truthy answer, polled until ``WAIT_SECONDS`` have passed."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def chat_frame(page: Page, public_key: str) -> Frame:
    """Kithost's frame for the widget, once its ChatKit has had ``setOptions``."""
    iframe = page.locator(f'iframe[src*="/w/{public_key}#"]')
    frame = await (await iframe.element_handle()).content_frame()
    assert frame is not None
    await frame.wait_for_function("() => window.chatkit && window.chatkit.calls.length > 0")
    return frame


async def chatkit_calls(frame: Frame | Page, method: str = "setOptions") -> list[Any]:
    """The arguments of each recorded call of ``method`` on the ChatKit stand-in."""
    calls: list[dict[str, Any]] = await frame.evaluate("() => window.chatkit.calls")
    return [call["args"] for call in calls if call["method"] == method]


async def answer_confirm(page: Page, action: str, *, agree: bool) -> str:
    """Answer the dashboard's question before an action (its confirm dialog, open on ``page``,
    named ``"{action}?"``) with its button ``action`` when ``agree``, else with Cancel; the
    question it asked (its description), once it has closed."""
    dialog = page.get_by_role("alertdialog", name=f"{action}?", exact=True)
    await expect(dialog).to_be_visible()
    question: str = await dialog.evaluate(
        "(d) => document.getElementById(d.getAttribute('aria-describedby')).textContent"
    )
    await dialog.get_by_role("button", name=action if agree else "Cancel", exact=True).click()
    await expect(dialog).to_be_hidden()
    return question
