"""The dashboard (``/admin/``) in real Chromium against ``kithost serve`` on PostgreSQL, with
a real worker (Redis) and the fake OpenAI server: the main journeys, every main screen
through axe-core at 1280 and 390 px (screenshots under ``test-results/browser``), and the
demo page's chat answering with the demo model.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Frame,
    Page,
    expect,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import migrate
from kithost.analytics.rollups.tasks import rollup
from kithost.auth.principals import CLI
from kithost.db import create_engine, create_sessionmaker, session_scope
from kithost.demo import seed_demo
from kithost.models import DeliveryStatus, User, WebhookDelivery, WebhookEndpoint, Widget
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.tenants.service import create_tenant
from kithost.users.service import create_user
from kithost.worker.app import create_celery
from kithost.worker.enqueue import PendingTasks
from tests.browser.conftest import CDN, serve_standin
from tests.browser.helpers import Site, answer_confirm, widget_snippet
from tests.conftest import (
    REDIS_URL,
    as_app_role,
    create_app_role,
    create_pg_database,
    drop_pg_database,
    free_port,
    make_settings,
)
from tests.factories import set_draft
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI
from tests.visitor.helpers import Server
from tests.widgets.helpers import HOSTED
from tests.workers import start_worker, stop_worker

AXE = Path(__file__).resolve().parents[2] / "admin-ui" / "node_modules" / "axe-core" / "axe.min.js"
OWNER = "owner@acme.example"
PASSWORD = "a long dashboard password"
TENANT = "acme"
WIDTHS = (1280, 390)
PREVIEW = 'iframe[title="Live preview of the draft"]'


@dataclass(frozen=True)
class Dashboard:
    url: str
    settings: Settings

    def admin(self, path: str = "") -> str:
        return f"{self.url}/admin/t/{TENANT}/{path}"


@pytest.fixture(scope="module")
async def dashboard(
    tmp_path_factory: pytest.TempPathFactory, task_queue: str, openai: FakeOpenAI
) -> AsyncIterator[Dashboard]:
    """Kithost on a PostgreSQL database of its own (``kithost serve`` and the worker as the
    app's role, migrations and the arranging as the owner), a worker, and tenant ``acme``'s
    owner."""
    data = tmp_path_factory.mktemp("dashboard")
    database = create_pg_database()
    create_app_role()
    queue = f"{task_queue}-dashboard"
    settings = make_settings(data, as_app_role(database), queue, migration_database_url=database)
    await asyncio.to_thread(migrate.upgrade, settings)
    engine = create_engine(settings.migration_database)
    async with session_scope(
        create_sessionmaker(engine, PendingTasks(create_celery(settings)))
    ) as db:
        owner = await create_user(db, CLI, OWNER, password=PASSWORD)
        await create_tenant(db, CLI, slug=TENANT, name="Acme", owner=owner.user)
    await engine.dispose()
    server = Server(
        settings,
        data / "serve.log",
        KITHOST_BROKER_URL=REDIS_URL,
        KITHOST_TASK_QUEUE=queue,
        KITHOST_OPENAI_BASE_URL=openai.base_url,
        KITHOST_OPENAI_API_KEY=openai.api_key,
    )
    worker = start_worker(settings, KITHOST_DATABASE_URL=settings.database)
    try:
        async with httpx2.AsyncClient() as client:
            await server.wait_ready(client)
        yield Dashboard(server.url, settings)
    finally:
        stop_worker(worker)
        server.stop()
        drop_pg_database(database)


@dataclass
class Console:
    """What the page logged as an error: a script's, not a refused request's."""

    errors: list[str]

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)


@pytest.fixture
async def console() -> Console:
    return Console([])


@pytest.fixture
async def context(browser: Browser, console: Console) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    await context.route(CDN, serve_standin)
    # axe-core in every page (an init script, which the dashboard's CSP does not apply to).
    await context.add_init_script(path=AXE)
    yield context
    await context.close()


@pytest.fixture
async def page(context: BrowserContext, console: Console) -> AsyncIterator[Page]:
    """The dashboard's page: it logs no error (the visitors' pages are other pages)."""
    page = await context.new_page()
    page.on("console", console.on_message)
    page.on("pageerror", lambda error: console.errors.append(str(error)))
    yield page
    assert console.errors == []


async def sign_in(
    page: Page, dashboard: Dashboard, email: str = OWNER, password: str = PASSWORD
) -> None:
    await page.goto(dashboard.url + "/")
    await expect(page.get_by_role("heading", name="Sign in to Kithost")).to_be_visible()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Widgets")).to_be_visible()


async def check_screen(page: Page, output: Path, name: str) -> None:
    """No serious or critical axe-core violation; screenshots at each width."""
    found = await page.evaluate(
        """async () => {
            const result = await axe.run(document, { iframes: false });
            return result.violations
                .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
        }"""
    )
    assert found == [], f"{name}: {found}"
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=str(output / f"dashboard-{name}-{width}.png"), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})


@asynccontextmanager
async def api(dashboard: Dashboard) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client signed in as the owner, sending the CSRF token on writes."""
    async with httpx2.AsyncClient(base_url=dashboard.url) as client:
        login = {"email": OWNER, "password": PASSWORD}
        signed_in = await client.post("/api/v1/auth/login", json=login)
        assert signed_in.status_code == 200, signed_in.text
        client.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
        yield client


@asynccontextmanager
async def dashboard_session(dashboard: Dashboard) -> AsyncIterator[AsyncSession]:
    """A unit of work on the dashboard's database, as its owner (for arranging)."""
    engine = create_engine(dashboard.settings.migration_database)
    try:
        async with session_scope(
            create_sessionmaker(engine, PendingTasks(create_celery(dashboard.settings)))
        ) as db:
            yield db
    finally:
        await engine.dispose()


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 45) -> None:
    for _ in range(int(seconds * 2)):
        if await check():
            return
        await asyncio.sleep(0.5)
    raise AssertionError("never happened")


async def chat_frame(page: Page) -> Frame:
    """The framed chat's document once ChatKit (the stand-in) has its options."""
    await page.wait_for_function(
        "() => [...document.querySelectorAll('iframe')].some((f) => f.src.includes('/w/'))"
    )
    for _ in range(60):
        for frame in page.frames:
            if "/w/" in frame.url and await frame.evaluate("() => !!window.chatkit?.calls.length"):
                return frame
        await asyncio.sleep(0.25)
    raise AssertionError("the chat never started")


def rolled_up(dashboard: Dashboard) -> None:
    """The analytics rollup, run now by the worker instead of by beat within the minute."""
    celery = create_celery(dashboard.settings)
    celery.send_task(rollup.name).get(timeout=60)


async def test_owner_builds_publishes_embeds_and_measures_a_widget(
    dashboard: Dashboard, page: Page, context: BrowserContext, output: Path, openai: FakeOpenAI
) -> None:
    openai.reset()
    await page.goto(dashboard.url + "/")
    await expect(page.get_by_role("heading", name="Sign in to Kithost")).to_be_visible()
    await check_screen(page, output, "sign-in")
    await sign_in(page, dashboard)
    await check_screen(page, output, "widgets-empty")
    await page.get_by_role("button", name="New widget").click()
    await page.get_by_label("Name").fill("Shop chat")
    await page.get_by_role("button", name="Create widget").click()
    await expect(page.get_by_role("heading", name="Shop chat")).to_be_visible()

    # Theme and start screen, saved to the draft: the preview runs the loader on it.
    await page.get_by_label("Colour scheme").select_option("dark")
    await page.get_by_label("Greeting").fill("Hello from Acme")
    start_screen = page.get_by_role("group", name="Start screen")
    await start_screen.get_by_role("button", name="Add").click()
    await start_screen.get_by_label("Label").fill("Track order")
    await start_screen.get_by_label("Text sent").fill("Where is my order?")
    await page.get_by_role("button", name="Save the draft").click()
    await expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    chat = page.frame_locator(PREVIEW).frame_locator("iframe")
    await expect(chat.get_by_role("heading", name="Hello from Acme")).to_be_visible()
    await expect(chat.get_by_role("button", name="Track order")).to_be_visible()
    await check_screen(page, output, "editor")

    # Bad input is shown beside its field, and nothing is saved.
    await page.get_by_role("link", name="Launcher & behaviour").click()
    await page.get_by_label("Background", exact=True).fill("teal")
    await page.get_by_role("button", name="Save the draft").click()
    background = page.locator(".field.invalid").filter(has_text="Background")
    await expect(background.locator(".error")).to_contain_text("pattern")
    await page.get_by_role("button", name="Discard changes").click()
    await expect(page.get_by_label("Background", exact=True)).to_have_value("#111827")

    shop = Site()
    try:
        await page.get_by_role("link", name="Origins").click()
        await page.get_by_label("Add an origin").fill("https://shop.example.com/cart")
        await expect(page.get_by_text("An origin has no path")).to_be_visible()
        await page.get_by_label("Add an origin").fill(shop.origin)
        await page.get_by_role("button", name="Add origin").click()
        await expect(page.get_by_label("Allowed origins").get_by_text(shop.origin)).to_be_visible()
        await check_screen(page, output, "origins")

        await page.get_by_role("link", name="Publish & versions").click()
        await page.get_by_label("Note (what changes)").fill("First look")
        await page.get_by_role("button", name="Publish", exact=True).click()
        await expect(page.get_by_text("Published as version 1.")).to_be_visible()
        await expect(page.get_by_role("cell", name="First look")).to_be_visible()

        await page.get_by_role("link", name="Embed").click()
        await page.get_by_role("button", name="Copy snippet").click()
        await expect(page.get_by_role("button", name="Copied")).to_be_visible()
        snippet = await page.locator("pre.code code").first.inner_text()
        public_key = re.search(r"/embed/(pk_[\w-]+)\.js", snippet)
        assert public_key is not None
        assert snippet == widget_snippet(dashboard.url, public_key[1])
        await check_screen(page, output, "embed")

        # The snippet on the shop's page: the published theme, and the fake model's answer.
        visitor = await context.new_page()
        await visitor.goto(shop.page(snippet))
        await visitor.get_by_role("button", name="Chat with us").click()
        frame = await chat_frame(visitor)
        options = await frame.evaluate(
            "() => chatkit.calls.filter((c) => c.method === 'setOptions').at(-1).args"
        )
        assert options["theme"]["colorScheme"] == "dark"
        assert options["startScreen"]["greeting"] == "Hello from Acme"
        assert await frame.evaluate("chatkit.converse('Where is my order?')") == DEFAULT_REPLY_TEXT
        await expect(frame.get_by_text(DEFAULT_REPLY_TEXT)).to_be_visible()
        await visitor.wait_for_timeout(1500)  # the loader sends its events within a second
        await visitor.close(run_before_unload=True)
    finally:
        shop.close()

    # The worker ingests the visit; the analytics screen shows the load, open and message.
    await page.get_by_role("link", name="Analytics").click()

    async def counted() -> bool:
        await asyncio.to_thread(rolled_up, dashboard)
        await page.reload()
        await expect(page.locator("[data-metric=loads]")).to_be_visible()
        values = {
            metric: int(await page.locator(f"[data-metric={metric}]").inner_text())
            for metric in ("loads", "opens", "messages")
        }
        return all(value >= 1 for value in values.values())

    await eventually(counted)
    await check_screen(page, output, "analytics")

    # The widget list shows each widget's loads this week, from one request for the list.
    reports: list[str] = []
    page.on(
        "request",
        lambda request: reports.append(request.url) if "/analytics/" in request.url else None,
    )
    await page.get_by_role("link", name="Widgets", exact=True).click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Shop chat", exact=True))
    await expect(row.get_by_role("cell").nth(5)).to_have_text(re.compile(r"^[1-9]\d*$"))
    assert [url.partition("?")[0].rsplit("/", 1)[1] for url in reports] == ["widgets"]


async def test_an_older_version_is_compared_and_restored(
    dashboard: Dashboard, page: Page, output: Path
) -> None:
    async with api(dashboard) as client:
        widgets = f"/api/v1/tenants/{TENANT}/widgets"
        created = await client.post(
            widgets, json={"name": "Versioned", "config": {"launcher": {"label": "First"}}}
        )
        widget = created.json()
        first = await client.post(f"{widgets}/{widget['id']}/publish", headers={"If-Match": '"1"'})
        changed = await client.patch(
            f"{widgets}/{widget['id']}",
            json={"config": {"launcher": {"label": "Second"}}},
            headers={"If-Match": first.headers["etag"]},
        )
        assert changed.status_code == 200
    await sign_in(page, dashboard)
    await page.goto(dashboard.admin(f"widgets/{widget['id']}/versions"))
    await page.get_by_role("button", name="Compare with the draft").click()
    diff = page.get_by_label("Differences", exact=False)
    await expect(diff).to_contain_text('-       "label": "First"')
    await expect(diff).to_contain_text('+       "label": "Second"')
    await check_screen(page, output, "versions")
    await page.get_by_role("button", name="Restore version 1 into the draft").click()
    await answer_confirm(page, "Restore version 1", agree=True)  # it replaces the draft
    await expect(page.get_by_text("Restored into the draft.")).to_be_visible()
    await page.get_by_role("link", name="Launcher & behaviour").click()
    await expect(page.get_by_label("Label", exact=True)).to_have_value("First")


async def test_function_tools_and_handoffs_are_edited_in_the_agent_tab(
    dashboard: Dashboard, page: Page, output: Path
) -> None:
    async with api(dashboard) as client:
        widgets = f"/api/v1/tenants/{TENANT}/widgets"
        widget = (await client.post(widgets, json={"name": "Agents"})).json()
    await sign_in(page, dashboard)
    await page.goto(dashboard.admin(f"widgets/{widget['id']}/agent"))
    await page.get_by_role("button", name="Add: Your endpoint (HTTP)").click()
    endpoint = page.get_by_role("group", name="Your endpoint (HTTP): http-1")
    await endpoint.get_by_label("URL").fill("https://tools.acme.example/lookup")
    await page.get_by_role("button", name="Add: A function of your page").click()
    page_tool = page.get_by_role("group", name="A function of your page: client-1")
    await page_tool.get_by_label("Function name (as the model sees it)").fill("open_cart")
    await page_tool.get_by_label("Arguments (JSON Schema of an object)").fill("{not json")
    await expect(page_tool.get_by_text("This is not JSON.")).to_be_visible()
    await page_tool.get_by_label("Arguments (JSON Schema of an object)").fill(
        '{"type": "object", "properties": {"sku": {"type": "string"}}}'
    )
    await page.get_by_role("button", name="Add an agent").click()
    agent = page.get_by_role("group", name="Agent Agent 1")
    await agent.get_by_label("Instructions").fill("You answer billing questions.")
    await agent.get_by_label("client-1").check()
    await agent.get_by_label("Name (the visitor sees it)").fill("Billing")
    await check_screen(page, output, "agent-tools")
    await page.get_by_role("button", name="Save the draft").click()
    # The first HTTP tool made the widget's tool secret: shown this once.
    secret = await page.get_by_test_id("secret").inner_text()
    assert len(secret) > 20
    async with api(dashboard) as client:
        saved = (await client.get(f"{widgets}/{widget['id']}")).json()
    agent_config = saved["config"]["agent"]
    assert [(t["type"], t["id"]) for t in agent_config["tools"]] == [
        ("http", "http-1"),
        ("client", "client-1"),
    ]
    assert agent_config["tools"][1]["name"] == "open_cart"
    assert agent_config["tools"][1]["parameters"]["properties"] == {"sku": {"type": "string"}}
    [billing] = agent_config["handoffs"]
    assert (billing["name"], billing["tools"], billing["hand_back"]) == (
        "Billing",
        ["client-1"],
        True,
    )
    assert agent_config["main_tools"] is None
    assert saved["has_tool_secret"] is True


async def test_a_new_base_url_saves_with_its_key(dashboard: Dashboard, page: Page) -> None:
    """The model key goes only to the endpoint it was set for: a new base URL saves only with
    a key for it, typed beside it and saved with the draft (the key first)."""
    async with api(dashboard) as client:
        widgets = f"/api/v1/tenants/{TENANT}/widgets"
        widget = (await client.post(widgets, json={"name": "Own model"})).json()
    await sign_in(page, dashboard)
    await page.goto(dashboard.admin(f"widgets/{widget['id']}/agent"))
    await page.get_by_label("Base URL", exact=True).fill("https://models.acme.example/v1")
    await page.get_by_role("button", name="Save the draft").click()
    await expect(page.get_by_text("needs the widget's model key for it").first).to_be_visible()
    await page.get_by_label("API key for this base URL").fill("sk-own-endpoint-key")
    await page.get_by_role("button", name="Save the draft").click()
    await expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    await expect(page.get_by_text("A key is set (it is never shown).")).to_be_visible()
    async with api(dashboard) as client:
        saved = (await client.get(f"{widgets}/{widget['id']}")).json()
    assert saved["config"]["agent"]["base_url"] == "https://models.acme.example/v1"
    assert saved["has_model_key"] is True


async def test_a_background_export_is_written_by_the_worker_and_downloaded(
    dashboard: Dashboard, page: Page
) -> None:
    await sign_in(page, dashboard)
    await page.get_by_role("link", name="Conversations").click()
    await page.get_by_label("Format of the background export").select_option("csv")
    await page.get_by_role("button", name="Export in the background").click()
    link = page.get_by_role("link", name="Download the export")
    await expect(link).to_be_visible(timeout=45_000)
    href = await link.get_attribute("href")
    assert href is not None
    async with httpx2.AsyncClient(base_url=dashboard.url) as anonymous:
        download = await anonymous.get(href)  # the signed link needs no credentials
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")


async def test_the_delivery_log_shows_older_deliveries_on_request(
    dashboard: Dashboard, page: Page
) -> None:
    """55 deliveries (made in the database, the endpoint disabled so the worker leaves
    them): the newest 50, then the rest on "Older deliveries"."""
    async with api(dashboard) as client:
        created = await client.post(
            f"/api/v1/tenants/{TENANT}/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["widget.published"]},
        )
        assert created.status_code == 201, created.text
        hook = created.json()["endpoint"]["id"]
        disabled = await client.patch(
            f"/api/v1/tenants/{TENANT}/webhooks/{hook}", json={"enabled": False}
        )
        assert disabled.status_code == 200, disabled.text
    async with dashboard_session(dashboard) as db:
        endpoint = await db.get(WebhookEndpoint, uuid.UUID(hook))
        assert endpoint is not None
        for minutes in range(55):
            db.add(
                WebhookDelivery(
                    tenant_id=endpoint.tenant_id,
                    endpoint_id=endpoint.id,
                    event_id=f"msg_{minutes}",
                    event_type="widget.published",
                    payload={},
                    status=DeliveryStatus.delivered,
                    attempts=1,
                    response_status=200,
                    created_at=utcnow() - timedelta(minutes=minutes),
                )
            )
    await sign_in(page, dashboard)
    await page.get_by_role("link", name="Webhooks").click()
    await page.get_by_role("button", name="Deliveries", exact=True).click()
    replays = page.get_by_role("button", name="Replay")
    await expect(replays).to_have_count(50)
    await page.get_by_role("button", name="Older deliveries").click()
    await expect(replays).to_have_count(55)
    await expect(page.get_by_role("button", name="Older deliveries")).to_have_count(0)


async def tenant_with_widgets(dashboard: Dashboard, slug: str, widgets: int) -> list[str]:
    """A tenant of the owner's with widgets ``W000``, ``W001``…, made through the API: their
    ids."""
    async with dashboard_session(dashboard) as db:
        owner = await db.scalar(select(User).where(User.email == OWNER))
        assert owner is not None
        await create_tenant(db, CLI, slug=slug, name=slug.title(), owner=owner)
    ids = []
    async with api(dashboard) as client:
        for n in range(widgets):
            made = await client.post(f"/api/v1/tenants/{slug}/widgets", json={"name": f"W{n:03}"})
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
    return ids


async def test_the_widget_list_shows_more_widgets_on_request(
    dashboard: Dashboard, page: Page
) -> None:
    """101 widgets, in a tenant of their own: the first 100, then the last on "More
    widgets" (the list showed the first 200 and nothing of the rest)."""
    await tenant_with_widgets(dashboard, "many", 101)
    await sign_in(page, dashboard)
    await page.goto(f"{dashboard.url}/admin/t/many/widgets")
    names = page.get_by_role("link", name=re.compile(r"^W\d{3}$"))
    await expect(names).to_have_count(100)
    await page.get_by_role("button", name="More widgets").click()
    await expect(names).to_have_count(101)
    await expect(page.get_by_role("link", name="W100", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="More widgets")).to_have_count(0)


async def test_the_widget_filter_finds_widgets_beyond_the_first_hundred(
    dashboard: Dashboard, page: Page
) -> None:
    """101 widgets: the analytics filter lists the first 100 and says so; typing finds the
    last, which stays listed once chosen (the filter listed the first 200, silently)."""
    last = (await tenant_with_widgets(dashboard, "filtered", 101))[-1]
    await sign_in(page, dashboard)
    await page.goto(f"{dashboard.url}/admin/t/filtered/analytics")
    options = page.get_by_label("Widget", exact=True).locator("option")
    await expect(options).to_have_count(102)  # all, 100 widgets, the note
    await expect(options.last).to_have_text("Only the first 100: type to find others")
    await page.get_by_label("Find a widget").fill("w100")
    await expect(options).to_have_text(["All widgets", "W100"])
    async with page.expect_request(lambda request: f"widget={last}" in request.url):
        await page.get_by_label("Widget", exact=True).select_option(label="W100")
    await page.get_by_label("Find a widget").fill("")
    await expect(options).to_have_count(103)  # the chosen one too
    await expect(page.get_by_label("Widget", exact=True)).to_have_value(last)


async def test_a_platform_admin_finds_any_tenant_in_the_switcher(
    dashboard: Dashboard, page: Page
) -> None:
    """102 tenants besides its own: the switcher lists 100 and says so; typing finds the
    others (the switcher listed the first 200, silently)."""
    admin = "operator@kithost.example"
    async with dashboard_session(dashboard) as db:
        made = await create_user(db, CLI, admin, password=PASSWORD, is_platform_admin=True)
        await create_tenant(db, CLI, slug="hq", name="HQ", owner=made.user)
        other = await create_user(db, CLI, "fleet@kithost.example", password=PASSWORD)
        for n in range(102):
            await create_tenant(db, CLI, slug=f"fleet-{n:03}", name=f"Fleet {n}", owner=other.user)
    await sign_in(page, dashboard, admin)
    switcher = page.get_by_label("Tenant", exact=True)
    await expect(switcher).to_have_value("hq")
    options = switcher.locator("option")
    await expect(options).to_have_count(102)  # its own, 100 found, the note
    await page.get_by_label("Find a tenant").fill("FLEET 101")
    await expect(options).to_have_text(["HQ", "Fleet 101"])
    await switcher.select_option("fleet-101")
    await expect(page).to_have_url(re.compile(r"/admin/t/fleet-101/widgets$"))
    await expect(page.get_by_role("heading", name="Widgets")).to_be_visible()


async def test_an_owner_deletes_a_tenant_after_typing_its_slug(
    dashboard: Dashboard, page: Page
) -> None:
    await tenant_with_widgets(dashboard, "doomed", 1)
    await sign_in(page, dashboard)
    await page.goto(f"{dashboard.url}/admin/t/doomed/settings")
    delete = page.get_by_role("button", name="Delete the tenant")
    await expect(delete).to_be_disabled()
    await page.get_by_label("Type doomed to confirm").fill("doome")
    await expect(delete).to_be_disabled()
    await page.get_by_label("Type doomed to confirm").fill("doomed")
    await delete.click()
    await expect(page.get_by_role("heading", name="Widgets")).to_be_visible()
    await expect(page).not_to_have_url(re.compile("doomed"))
    await expect(
        page.get_by_label("Tenant", exact=True).locator("option[value=doomed]")
    ).to_have_count(0)
    async with api(dashboard) as client:
        gone = await client.get("/api/v1/tenants/doomed")
        assert (gone.status_code, gone.json()["code"]) == (404, "tenant_not_found")


async def test_an_api_client_is_created_shown_once_and_revoked(
    dashboard: Dashboard, page: Page, output: Path
) -> None:
    await sign_in(page, dashboard)
    await page.get_by_role("link", name="API clients").click()
    await page.get_by_label("Name").fill("Backend")
    await page.get_by_role("button", name="Create client").click()
    secret = await page.get_by_test_id("secret").inner_text()
    assert len(secret) > 20
    await check_screen(page, output, "clients")
    await page.get_by_role("button", name="Done").click()
    await expect(page.get_by_test_id("secret")).to_have_count(0)
    await page.reload()
    await expect(page.get_by_text(secret)).to_have_count(0)
    await page.get_by_role("button", name="Revoke Backend").click()
    await answer_confirm(page, "Revoke API client", agree=True)
    await expect(page.get_by_text("Revoked")).to_be_visible()


async def test_an_invited_viewer_joins_and_can_change_nothing(
    dashboard: Dashboard, page: Page, browser: Browser, console: Console, output: Path
) -> None:
    async with api(dashboard) as client:
        widget = (
            await client.post(f"/api/v1/tenants/{TENANT}/widgets", json={"name": "Read only"})
        ).json()
    await sign_in(page, dashboard)
    await page.get_by_role("link", name="Team").click()
    invite = page.locator("form").filter(has_text="Invite someone")
    await invite.get_by_label("Email", exact=True).fill("viewer@acme.example")
    await invite.get_by_label("Role", exact=True).select_option("viewer")
    await invite.get_by_role("button", name="Invite").click()
    link = await page.get_by_test_id("invite-link").inner_text()
    assert link.startswith(f"{dashboard.url}/admin/invite#token=")
    await check_screen(page, output, "team")

    invitee = await browser.new_context()
    try:
        viewer = await invitee.new_page()
        viewer.on("console", console.on_message)
        await viewer.goto(link)
        await viewer.get_by_label("Your name").fill("Vera Viewer")
        await viewer.get_by_label("Password").fill("another long password")
        await viewer.get_by_role("button", name="Accept and create my account").click()
        await expect(viewer.get_by_role("heading", name="Invitation accepted")).to_be_visible()
        await viewer.get_by_role("link", name="Sign in").click()
        await viewer.get_by_label("Email").fill("viewer@acme.example")
        await viewer.get_by_label("Password").fill("another long password")
        await viewer.get_by_role("button", name="Sign in").click()
        await expect(viewer.get_by_role("heading", name="Widgets")).to_be_visible()
        await expect(viewer.get_by_role("button", name="New widget")).to_be_disabled()

        await viewer.goto(dashboard.admin(f"widgets/{widget['id']}"))
        await expect(
            viewer.get_by_text("Your role can view this but not change it.")
        ).to_be_visible()
        await expect(viewer.get_by_label("Colour scheme")).to_be_disabled()
        await expect(viewer.get_by_role("button", name="Save the draft")).to_be_disabled()
        # And the API refuses the write anyway.
        status = await viewer.evaluate(
            """async (id) => {
                const me = await (await fetch('/api/v1/auth/me')).json();
                const answer = await fetch(`/api/v1/tenants/acme/widgets/${id}`, {
                    method: 'DELETE', headers: { 'X-CSRF-Token': me.csrf_token } });
                return answer.status;
            }""",
            widget["id"],
        )
        assert status == 403
    finally:
        await invitee.close()


async def test_the_error_log_shows_a_refused_origin_with_its_hint(
    dashboard: Dashboard, page: Page, context: BrowserContext, output: Path
) -> None:
    async with api(dashboard) as client:
        widgets = f"/api/v1/tenants/{TENANT}/widgets"
        widget = (
            await client.post(widgets, json={"name": "Refused", "origins": ["https://a.example"]})
        ).json()
        published = await client.post(
            f"{widgets}/{widget['id']}/publish", headers={"If-Match": f'"{widget["revision"]}"'}
        )
        assert published.status_code == 200
    elsewhere = Site()
    try:
        visitor = await context.new_page()
        async with visitor.expect_response(lambda r: r.url.endswith("/events")) as reported:
            await visitor.goto(elsewhere.page(widget_snippet(dashboard.url, widget["public_key"])))
        assert (await reported.value).status == 202
        await visitor.close()
    finally:
        elsewhere.close()
    await sign_in(page, dashboard)
    await page.get_by_role("link", name="Errors").click()

    async def shown() -> bool:
        await page.reload()
        await expect(page.get_by_role("status")).to_have_count(0)  # loaded
        return await page.get_by_text("config_refused").count() > 0

    await eventually(shown)
    group = page.locator(".error-group").filter(has_text="config_refused")
    await expect(group.get_by_text("How to fix:")).to_be_visible()
    await check_screen(page, output, "errors")


async def test_a_hosted_widget_shows_the_shutdown_and_converts(
    dashboard: Dashboard, page: Page, output: Path
) -> None:
    """Hosted widgets date from before Agent Builder's shutdown: made here in the database."""
    async with api(dashboard) as client:
        widget = (
            await client.post(f"/api/v1/tenants/{TENANT}/widgets", json={"name": "Hosted"})
        ).json()
    async with dashboard_session(dashboard) as db:
        row = await db.get(Widget, uuid.UUID(widget["id"]))
        assert row is not None
        set_draft(row, {**row.draft, **HOSTED})
    await sign_in(page, dashboard)
    await expect(page.get_by_text("Agent Builder retired")).to_be_visible()
    await page.get_by_role("link", name="Hosted").click()
    notice = page.get_by_role("region", name="Agent Builder shutdown")
    await expect(notice).to_contain_text("OpenAI shut Agent Builder down")
    await check_screen(page, output, "hosted")
    await notice.get_by_role("button", name="Convert to self-hosted").click()
    await expect(notice).to_contain_text("The draft is now self-hosted")
    await page.get_by_role("link", name="Agent").click()
    await expect(page.get_by_label("Model", exact=True)).to_be_enabled()


SCREENS = ["conversations", "knowledge", "webhooks", "audit", "settings"]


@pytest.mark.parametrize("screen", SCREENS)
async def test_every_other_screen_is_accessible_at_both_widths(
    dashboard: Dashboard, page: Page, output: Path, screen: str
) -> None:
    await sign_in(page, dashboard)
    await page.goto(dashboard.admin(screen))
    await expect(page.locator("#page-title")).to_be_visible()
    # Nothing still loading (an empty status, such as the background export's, says nothing).
    await expect(page.get_by_role("status").filter(has_text=re.compile(r"\S"))).to_have_count(0)
    await check_screen(page, output, screen)


@pytest.fixture
async def keyless_demo(tmp_path: Path, task_queue: str) -> AsyncIterator[int]:
    """Kithost on SQLite without an OpenAI key, set up as ``make run`` does (public at
    ``http://localhost:<port>``, the demo seeded): its port."""
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/kithost.db", task_queue)
    await asyncio.to_thread(migrate.upgrade, settings)
    port = free_port()
    public = f"http://localhost:{port}"
    settings = settings.model_copy(update={"port": port, "public_url": public})
    engine = create_engine(settings.database)
    async with session_scope(
        create_sessionmaker(engine, PendingTasks(create_celery(settings)))
    ) as db:
        await seed_demo(db, settings)
    await engine.dispose()
    server = Server(settings, tmp_path / "serve.log", port, KITHOST_PUBLIC_URL=public)
    try:
        async with httpx2.AsyncClient() as client:
            await server.wait_ready(client)
        yield port
    finally:
        server.stop()


async def test_the_demo_page_chats_with_the_demo_model_at_either_host(
    keyless_demo: int, context: BrowserContext, output: Path
) -> None:
    port = keyless_demo
    for host in ("127.0.0.1", "localhost"):
        page = await context.new_page()
        await page.goto(f"http://{host}:{port}/demo")
        await expect(page.get_by_text("No OpenAI API key is set")).to_be_visible()
        await page.get_by_role("button", name="Chat with us").click()
        frame = await chat_frame(page)
        assert "demo model" in await frame.evaluate("chatkit.converse('Hello?')")
        await page.screenshot(path=str(output / f"demo-{host}.png"))
        await page.close()


async def test_a_member_is_removed_only_once_the_owner_confirms(
    dashboard: Dashboard, page: Page
) -> None:
    """One click on Remove took a member's access away (a probe removed an editor so)."""
    async with api(dashboard) as client:
        invited = await client.post(
            f"/api/v1/tenants/{TENANT}/invitations",
            json={"email": "removed@acme.example", "role": "editor"},
        )
        assert invited.status_code == 201, invited.text
        token = invited.json()["accept_url"].split("#token=")[1]
    async with httpx2.AsyncClient(base_url=dashboard.url) as stranger:
        accept = {"token": token, "password": "a long enough password", "name": "Rem"}
        accepted = await stranger.post("/api/v1/invitations/accept", json=accept)
        assert accepted.status_code == 200, accepted.text
    await sign_in(page, dashboard)
    await page.get_by_role("link", name="Team").click()
    remove = page.get_by_role("button", name="Remove removed@acme.example")
    await remove.click()
    asked = await answer_confirm(page, "Remove member", agree=False)
    await page.reload()
    await expect(remove).to_be_visible()

    await remove.click()
    await answer_confirm(page, "Remove member", agree=True)
    await expect(remove).to_have_count(0)
    assert asked.startswith("Remove removed@acme.example from ")
