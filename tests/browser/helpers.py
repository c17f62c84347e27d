"""Fixture sites, snippets, what the browser sent and the dashboard's questions answered, for
the browser tests; and for the dashboard's: tenants of the test's own on the session's Kithost
(the ``tenant`` and ``console_tenant`` fixtures) whose owner signs in, opens screens and calls
the API, and the page with axe-core in it (the ``page`` fixture) and its violations. A module
imports the fixtures it uses by name."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx2
import pytest
from playwright.async_api import BrowserContext, Frame, Page, Request, Route, expect

from kithost.analytics.latency import histogram
from kithost.auth.principals import CLI
from kithost.db import session_scope
from kithost.models import AnalyticsRollup, ErrorGroup, Membership, Role, RollupPeriod
from kithost.models.base import utcnow
from kithost.tenants.service import create_tenant
from kithost.users.service import create_user
from kithost.widgets.service import create_widget, publish_draft
from tests.conversations.helpers import conversation

if TYPE_CHECKING:  # the folder's conftest imports this module
    from tests.browser.conftest import Kithost

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


PASSWORD = "a long dashboard password"


@dataclass(frozen=True)
class Tenant:
    """A tenant of the test's own on the session's Kithost, with an owner and a viewer."""

    url: str
    slug: str
    owner: str
    viewer: str
    threads: list[str]

    def admin(self, path: str) -> str:
        return f"{self.url}/admin/t/{self.slug}/{path}"


async def sign_in(page: Page, tenant: Tenant, email: str | None = None) -> None:
    await page.goto(tenant.url + "/admin/sign-in")
    await page.get_by_label("Email").fill(email or tenant.owner)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Widgets")).to_be_visible()


async def open_screen(page: Page, tenant: Tenant, path: str, heading: str) -> None:
    await page.goto(tenant.admin(path))
    await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()


@asynccontextmanager
async def owner_api(tenant: Tenant) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client signed in as the owner, sending the CSRF token on writes."""
    async with httpx2.AsyncClient(base_url=tenant.url) as client:
        signed_in = await client.post(
            "/api/v1/auth/login", json={"email": tenant.owner, "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        client.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
        yield client


@pytest.fixture
async def tenant(kithost: Kithost) -> Tenant:
    """A new tenant (owner, viewer, a widget and three conversations), so tests share nothing."""
    slug = f"scr-{secrets.token_hex(4)}"
    owner, viewer = f"owner-{slug}@example.test", f"viewer-{slug}@example.test"
    async with session_scope(kithost.sessionmaker) as db:
        made = await create_user(db, CLI, owner, password=PASSWORD)
        tenant = await create_tenant(db, CLI, slug=slug, name="Screens", owner=made.user)
        looker = await create_user(db, CLI, viewer, password=PASSWORD)
        db.add(Membership(tenant_id=tenant.id, user_id=looker.user.id, role=Role.viewer))
        widget = await create_widget(db, CLI, tenant, name="Shop")
        threads = [
            await conversation(
                db, widget, f"u:{n}", [f"Question {n} about tents", "Answer"], hours_ago=n
            )
            for n in range(3)
        ]
    return Tenant(kithost.url, slug, owner, viewer, threads)


AXE = Path(__file__).resolve().parents[2] / "admin-ui" / "node_modules" / "axe-core" / "axe.min.js"


RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


BUSY = re.compile(r"^(Loading .*|Starting the preview)…$")
"""What a screen shows while it loads (the editor's preview is never network-idle)."""


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """The dashboard's page, axe-core in each of its documents: no script error while the
    test runs."""
    page = await context.new_page()
    await page.add_init_script(path=AXE)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert errors == []


async def violations(page: Page, where: str) -> list[str]:
    """axe-core's violations of ``RULES`` on the page as it is now, one line each: where, the
    rule, its impact and help, the elements (at most five) and what to fix on the first; a tab
    stop that is no control and has no role or name; a browser title that does not name the
    screen (WCAG 2.4.2)."""
    await expect(page.get_by_text(BUSY)).to_have_count(0)
    found: list[dict[str, Any]] = await page.evaluate(
        """async (tags) => (await axe.run(document, {
            runOnly: {type: 'tag', values: tags}, iframes: false, resultTypes: ['violations'],
        })).violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map((n) => n.target), fix: v.nodes[0].failureSummary,
        }))""",
        RULES,
    )
    # What Tab stops at besides controls (a block that scrolls) says what it is (WCAG 4.1.2).
    stops: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll('[tabindex="0"]')]
            .filter((e) => !e.matches('a[href], button, input, select, textarea, summary'))
            .filter((e) => !e.role || !(e.ariaLabel || e.getAttribute('aria-labelledby')))
            .map((e) => e.outerHTML.slice(0, 80))"""
    )
    title = await page.title()
    return (
        [
            f"{where}: {v['id']} ({v['impact']}) {v['help']}: {json.dumps(v['targets'][:5])}; "
            + v["fix"].replace("\n", " ")
            for v in found
        ]
        + [f"{where}: a tab stop without a role or a name: {stop}" for stop in stops]
        + ([] if title.endswith(" · Kithost") else [f"{where}: the title is {title!r}"])
    )


END_USERS = ("u:customer01", "u:customer02", "u:visitor-77")
"""End users of 12 characters, each with one conversation."""


@pytest.fixture
async def console_tenant(kithost: Kithost) -> Tenant:
    """A new tenant: its owner, a published widget, one conversation per end user, an hour
    of analytics and an error group."""
    slug = f"con-{secrets.token_hex(4)}"
    owner = f"owner-{slug}@example.test"
    async with session_scope(kithost.sessionmaker) as db:
        made = await create_user(db, CLI, owner, password=PASSWORD)
        tenant = await create_tenant(db, CLI, slug=slug, name="Console", owner=made.user)
        widget = await create_widget(
            db, CLI, tenant, name="Shop", origins=["https://shop.example.test"]
        )
        await publish_draft(db, CLI, widget, published_by=None)
        threads = [
            await conversation(
                db, widget, user, [f"Question {n} from {user}", "Answer"], feedback="positive"
            )
            for n, user in enumerate(END_USERS)
        ]
        now = utcnow()
        hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        latency = histogram([420, 900, 1300])
        # The same hour as the rollup keeps it: alone, and as its UTC day.
        db.add_all(
            [
                AnalyticsRollup(
                    tenant_id=tenant.id,
                    period=period,
                    start=hour if period is RollupPeriod.hour else hour.replace(hour=0),
                    widget_id=widget.id,
                    loads=9,
                    opens=5,
                    sessions=4,
                    threads=3,
                    messages=6,
                    responses=3,
                    tokens_in=300,
                    tokens_out=120,
                    feedback_up=3,
                    client_errors=1,
                    first_token_ms=latency,
                    total_ms=latency,
                )
                for period in RollupPeriod
            ]
            + [
                ErrorGroup(
                    tenant_id=tenant.id,
                    widget_id=widget.id,
                    fingerprint=secrets.token_hex(32),
                    kind="network",
                    message="Failed to fetch",
                    hint="Check the allowed origins.",
                    sample={"message": "Failed to fetch"},
                    first_seen=now,
                    last_seen=now,
                    count=1,
                ),
            ]
        )
    return Tenant(kithost.url, slug, owner, owner, threads)
