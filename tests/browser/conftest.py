"""Real Chromium (Debian's, through Playwright) against a real ``kithost serve`` on loopback.

One browser, one Kithost and two fixture sites per session: ``shop`` (allowed by the
widgets tests publish) and ``elsewhere`` (allowed by none). OpenAI's CDN is routed to the
ChatKit stand-in built from ``embed/test/chatkit-standin.ts``. Event batches are recorded on
their way to the real events endpoint, with its answers; the stand-in's calls to the chat
runtime are recorded and answered 200 (the stand-in speaks no real ChatKit protocol).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright

from kithost import migrate
from kithost.db import Sessionmaker, create_engine, create_sessionmaker, session_scope
from kithost.kit.crypto import SecretBox
from kithost.settings import Settings
from kithost.widgets.config import WidgetConfig
from kithost.worker.app import create_celery
from kithost.worker.enqueue import PendingTasks
from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, Captured, Site
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.visitor.helpers import Server, make_widget

STANDIN = Path(__file__).parent / "dist" / "chatkit-standin.js"
CDN = "https://cdn.platform.openai.com/**"
SCRIPT_TIMEOUT_SECONDS = 3
OUTPUT = Path(__file__).resolve().parents[2] / "test-results" / "browser"


@dataclass(frozen=True)
class Kithost:
    url: str
    sessionmaker: Sessionmaker
    secret_box: SecretBox

    async def publish(
        self,
        origins: Sequence[str | tuple[str, str | None]],
        config: WidgetConfig,
        identity_secret: str | None = None,
    ) -> str:
        """A new widget allowing ``origins``, with ``config`` published; its public key."""
        async with session_scope(self.sessionmaker) as db:
            widget = await make_widget(db, origins, config)
            if identity_secret is not None:
                widget.identity_secret = self.secret_box.encrypt(identity_secret)
            return widget.public_key


@pytest.fixture(scope="session")
def browser_settings(tmp_path_factory: pytest.TempPathFactory, task_queue: str) -> Settings:
    """A migrated SQLite database of the session's own."""
    data = tmp_path_factory.mktemp("browser")
    settings = make_settings(data, f"sqlite+aiosqlite:///{data}/kithost.db", task_queue)
    migrate.upgrade(settings)
    return settings


@pytest.fixture(scope="session")
def openai() -> Iterator[FakeOpenAI]:
    """OpenAI for hosted widgets' sessions (the fake, on loopback)."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="session")
async def kithost(browser_settings: Settings, openai: FakeOpenAI) -> AsyncIterator[Kithost]:
    settings, data = browser_settings, browser_settings.data_dir
    server = Server(
        settings,
        data / "serve.log",
        KITHOST_CHATKIT_SCRIPT_TIMEOUT_SECONDS=str(SCRIPT_TIMEOUT_SECONDS),
        KITHOST_FRAME_DOMAIN_KEY="domain_pk_kithost",
        KITHOST_OPENAI_BASE_URL=openai.base_url,
        KITHOST_OPENAI_API_KEY=openai.api_key,
    )
    engine = create_engine(settings.database)
    try:
        async with httpx2.AsyncClient() as client:
            await server.wait_ready(client)
        sessionmaker = create_sessionmaker(engine, PendingTasks(create_celery(settings)))
        yield Kithost(server.url, sessionmaker, SecretBox(settings.keys()))
    finally:
        server.stop()
        await engine.dispose()


@pytest.fixture(scope="session")
def shop() -> Iterator[Site]:
    site = Site()
    yield site
    site.close()


@pytest.fixture(scope="session")
def elsewhere() -> Iterator[Site]:
    site = Site()
    yield site
    site.close()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
def captured() -> Captured:
    return Captured()


@pytest.fixture
async def context(
    browser: Browser, kithost: Kithost, captured: Captured
) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile with the CDN, events and chat runtime routed."""
    context = await browser.new_context()
    context.set_default_timeout(15_000)
    await context.route(CDN, serve_standin)
    await context.route(f"{kithost.url}/v1/embed/*/events", captured.on_events)
    await context.route(f"{kithost.url}/v1/chatkit/*", captured.on_chatkit)
    context.on("request", captured.on_request)
    yield context
    # A page may still be sending (an unload's event beacon) as the test ends: the handler
    # passing it on would read a response the closing context has disposed of.
    await context.unroute_all(behavior="ignoreErrors")
    await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture(scope="session")
def output() -> Path:
    """Where screenshots go (git-ignored)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


async def serve_standin(route: Route) -> None:
    await route.fulfill(body=STANDIN.read_bytes(), content_type="text/javascript")
