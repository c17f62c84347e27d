"""Self-hosted widgets to chat with, visitors' tokens, the ChatKit protocol as a client
speaks it (SSE decoded back into the SDK's typed events), problems, and attachments; agents'
client, ``http`` and ``mcp`` tools and widgets using them, a store with ids of its own, and
chats raced through a real server (``tests.races``: the ``racing`` app and ``http`` client
fixtures, which a module imports by name)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
import pytest
from chatkit.store import StoreItemType
from chatkit.types import (
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    TaskItem,
    ThreadCreatedEvent,
    ThreadItem,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
)
from fastapi import FastAPI
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.facts import FactBuffer
from kithost.auth.principals import CLI
from kithost.chat.context import ChatContext
from kithost.chat.runtime import create_runtime, runtime
from kithost.chat.store import SqlStore
from kithost.kit.outbound import origin_of
from kithost.models import Tenant, Widget, WidgetMcpSecret, WidgetVersion
from kithost.sessions import tokens
from kithost.settings import Settings
from kithost.visitor import service as visitor_service
from kithost.widgets.config import WidgetConfig
from kithost.widgets.service import create_widget
from tests.conftest import LoopbackServer, state_of
from tests.fakes import mcp_server
from tests.fakes.openai_server import FakeOpenAI
from tests.races import RacingApp, racing_app
from tests.visitor.helpers import ORIGIN, make_widget, publish

EVENT: TypeAdapter[ThreadStreamEvent] = TypeAdapter(ThreadStreamEvent)
Item = TypeVar("Item", bound=ThreadItem)
T = TypeVar("T")
INGEST = "kithost.analytics.ingest"


def chat_config(
    fake: FakeOpenAI, *, agent: dict[str, Any] | None = None, **config: Any
) -> WidgetConfig:
    """A self-hosted widget answered by the fake model."""
    return WidgetConfig.model_validate(
        {"agent": {"base_url": fake.base_url, **(agent or {})}, **config}
    )


async def make_chat_widget(
    db: AsyncSession, app: FastAPI, fake: FakeOpenAI, config: WidgetConfig | None = None
) -> Widget:
    """A published self-hosted widget of a new tenant, with the model key the fake accepts
    (for the fake's ``base_url``) and the same key as the tenant's OpenAI key."""
    widget = await make_widget(db)
    key = app.state.secret_box.encrypt(fake.api_key)
    widget.model_key, widget.model_key_base_url = key, fake.base_url
    tenant = await db.get(Tenant, widget.tenant_id)
    assert tenant is not None
    tenant.openai_api_key = key
    await publish(db, widget, config or chat_config(fake))
    return widget


async def publish_unchecked(db: AsyncSession, widget: Widget, config: WidgetConfig) -> None:
    """Publish ``config`` as a version saved before today's checks were (an agent's
    ``base_url`` without a model key, an address now refused): the runtime refuses it too."""
    number = (widget.published_version or 0) + 1
    db.add(
        WidgetVersion(
            tenant_id=widget.tenant_id,
            widget_id=widget.id,
            number=number,
            config=config.model_dump(mode="json"),
        )
    )
    widget.published_version = number
    await db.flush()


@dataclass
class Visitor:
    """One end user's ChatKit talking to ``POST /v1/chatkit/{pk}``."""

    http: httpx2.AsyncClient
    public_key: str
    token: str
    end_user: str
    origin: str = ORIGIN

    @property
    def url(self) -> str:
        return f"/v1/chatkit/{self.public_key}"

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Origin": self.origin, **extra}

    async def post(
        self, op: str, headers: dict[str, str] | None = None, **params: Any
    ) -> httpx2.Response:
        return await self.http.post(
            self.url, json={"type": op, "params": params}, headers=headers or self.headers()
        )

    async def call(self, op: str, **params: Any) -> Any:
        """A non-streaming request's JSON answer."""
        response = await self.post(op, **params)
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == self.origin
        return response.json()

    async def stream(self, op: str, **params: Any) -> list[ThreadStreamEvent]:
        """A streaming request's events, decoded."""
        response = await self.post(op, **params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        return decode(response.text)

    async def send(
        self, text: str, thread_id: str | None = None, **input: Any
    ) -> list[ThreadStreamEvent]:
        message = {
            "content": [{"type": "input_text", "text": text}],
            "attachments": [],
            "inference_options": {},
            **input,
        }
        if thread_id is None:
            return await self.stream("threads.create", input=message)
        return await self.stream("threads.add_user_message", thread_id=thread_id, input=message)


def message(text: str) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }


async def leave_when(
    http: httpx2.AsyncClient,
    alice: Visitor,
    text: str,
    enough: Callable[[list[ThreadStreamEvent]], bool],
) -> list[ThreadStreamEvent]:
    """Start a thread with ``text`` and leave (close the connection: the visitor pressed stop
    or left) once the events streamed so far are ``enough``; those events."""
    body = {"type": "threads.create", "params": {"input": message(text)}}
    seen = ""
    async with http.stream("POST", alice.url, json=body, headers=alice.headers()) as response:
        async for chunk in response.aiter_text():
            seen += chunk
            if enough(decode(seen)):
                break
    return decode(seen)


def deltas(events: list[ThreadStreamEvent]) -> list[str]:
    """The assistant's text deltas among ``events``."""
    return [
        e.update.delta
        for e in events
        if isinstance(e, ThreadItemUpdatedEvent)
        and isinstance(e.update, AssistantMessageContentPartTextDelta)
    ]


def thread_of(events: list[ThreadStreamEvent]) -> str:
    [created] = [e for e in events if isinstance(e, ThreadCreatedEvent)]
    return created.thread.id


def done_items(events: list[ThreadStreamEvent], kind: type[Item]) -> list[Item]:
    """The items of type ``kind`` the events completed."""
    return [
        e.item for e in events if isinstance(e, ThreadItemDoneEvent) and isinstance(e.item, kind)
    ]


def answer_of(events: list[ThreadStreamEvent]) -> str:
    """The id of the assistant message the events completed."""
    [answer] = done_items(events, AssistantMessageItem)
    return answer.id


def decode(body: str) -> list[ThreadStreamEvent]:
    return [
        EVENT.validate_json(chunk.removeprefix("data: "))
        for chunk in body.split("\n\n")
        if chunk.startswith("data: ")
    ]


async def visitor(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    widget: Widget,
    end_user: str = "a:anon_" + "a" * 24,
    origin: str = ORIGIN,
    public_key: str | None = None,
) -> Visitor:
    """A visitor holding a session token for ``widget`` (``public_key``: a preview key of it,
    say), as the session endpoint mints it.

    (Minted directly: over a real socket, that endpoint's unit of work commits after its
    response is sent, on the test's one connection, while the next request already runs.)
    """
    claims = tokens.SessionClaims(
        end_user_id=end_user,
        origin=origin,
        tenant_id=str(widget.tenant_id),
        widget_id=str(widget.id),
    )
    key = public_key or widget.public_key
    minted = await tokens.issue(
        db, app.state.settings, app.state.secret_box, public_key=key, claims=claims
    )
    return Visitor(http, key, minted.token, end_user, origin)


@dataclass
class SentTasks:
    buffer: FactBuffer
    """The app's analytics buffer: :meth:`facts` sends what it holds first."""
    tasks: list[tuple[str, list[Any]]] = field(default_factory=list)

    def record(self, name: str, args: Any = None, **_: Any) -> None:
        self.tasks.append((name, json.loads(json.dumps(list(args or [])))))

    async def facts(self) -> list[dict[str, Any]]:
        """The analytics events reported so far, in order."""
        await self.buffer.aclose()
        return [event for name, args in self.tasks if name == INGEST for event in args[2]]


REFUSED_ADDRESSES = [
    ("0.0.0.0", "unspecified"),  # noqa: S104 (an address refused, nothing binds)
    ("10.0.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("fd00::1", "unique-local"),
    ("::ffff:a9fe:a9fe", "link-local"),  # ::ffff:169.254.169.254
    ("64:ff9b::a00:1", "private"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
]
"""Addresses a tenant's URL may not reach (outside ``KITHOST_OUTBOUND_ALLOW``), each with
the reason ``kit.outbound`` gives: one of every class it refuses."""


class Resolver:
    """Every name resolves to ``answers`` (nothing is ever connected to: all are refused)."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    @classmethod
    def installed(cls, app: FastAPI, answers: list[str]) -> Resolver:
        """A resolver the app's outbound calls (a chat's tools, MCP discovery) use from now."""
        resolver = cls(answers)
        app.state.outbound_resolver = resolver
        app.state.add(create_runtime(state_of(app)))
        return resolver

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        return self.answers


BOB = "a:anon_" + "b" * 24
ALICE = "a:anon_" + "a" * 24


async def context_of(
    db: AsyncSession,
    app: FastAPI,
    fake: FakeOpenAI,
    user: str = BOB,
    config: WidgetConfig | None = None,
) -> ChatContext:
    """The request context of ``user`` chatting with a new published widget (committed)."""
    widget = await make_chat_widget(db, app, fake, config)
    published = (await visitor_service.load(db, widget.public_key)).published
    assert published is not None
    await db.commit()
    return ChatContext(
        widget=published,
        end_user_id=user,
        origin="https://shop.example.com",
        locale=None,
        page_context=None,
        received_at=0.0,
    )


def store_of(app: FastAPI) -> SqlStore:
    """A new store of the app's runtime (one lives for one request)."""
    return runtime(state_of(app)).attachment_store().store


def assert_problem(response: httpx2.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["code"] == code
    return body


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
ATTACHMENTS = {
    "enabled": True,
    "maxSize": {"image/png": 1000, "*": 100},
    "accept": {"image/png": [".png"], "text/plain": [".txt"]},
}


async def attachment_widget(db: AsyncSession, app: FastAPI, fake: FakeOpenAI) -> Widget:
    config = chat_config(fake, chatkit={"composer": {"attachments": ATTACHMENTS}})
    return await make_chat_widget(db, app, fake, config)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def blob(app: FastAPI, widget: Widget, attachment_id: str) -> Path:
    root: Path = app.state.settings.attachments_dir
    return root / str(widget.tenant_id) / str(widget.id) / attachment_id


async def create(
    visitor: Visitor, name: str = "a.png", size: int = len(PNG), mime_type: str = "image/png"
) -> dict[str, Any]:
    created: dict[str, Any] = await visitor.call(
        "attachments.create", name=name, size=size, mime_type=mime_type
    )
    return created


async def upload(
    http: httpx2.AsyncClient,
    attachment: dict[str, Any],
    data: bytes = PNG,
    mime_type: str = "image/png",
) -> httpx2.Response:
    descriptor = attachment["upload_descriptor"]
    assert descriptor["method"] == "POST"
    return await http.post(
        path_of(descriptor["url"]),
        files={"file": ("a.png", data, mime_type)},
        headers={"Origin": "https://cdn.platform.openai.com"},
    )


def model_requests(fake: FakeOpenAI) -> list[dict[str, Any]]:
    """The bodies of the model requests so far, in order."""
    return [r.json for r in fake.requests if r.path in {"/v1/responses", "/v1/chat/completions"}]


def offered(body: dict[str, Any]) -> list[str]:
    """The tools a Responses request offers: function names, else the tool's type."""
    return [t.get("name") or t["type"] for t in body.get("tools", [])]


def transfers(events: list[ThreadStreamEvent]) -> list[str]:
    """The titles of the task items among ``events`` ("Transferred to …")."""
    return [
        e.item.task.title or ""
        for e in events
        if isinstance(e, ThreadItemDoneEvent)
        and isinstance(e.item, TaskItem)
        and e.item.task.type == "custom"
    ]


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The errors ``caplog`` holds, but asyncio's reports of tasks collected as garbage
    (chatkit's queue readers, abandoned by any earlier test in this process): they may land
    in any test, and are not its errors."""
    return [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "asyncio"]


def client_tool(**extra: Any) -> dict[str, Any]:
    return {
        "type": "client",
        "id": "cart",
        "label": "Looking at your cart…",
        "name": "get_cart",
        "description": "The visitor's shopping cart.",
        "parameters": {"type": "object", "properties": {"currency": {"type": "string"}}},
        **extra,
    }


SECRET = "kts_" + "s" * 43
"""The tool secret of ``tool_widget``'s widgets, which signs their ``http`` tool's calls."""
ORDER_ARGS = {"order": "A-1"}


def http_tool(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "id": "orders",
        "label": "Looking up your order…",
        "name": "lookup_order",
        "description": "The status of an order.",
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
        "url": url,
        **extra,
    }


async def tool_widget(
    db: AsyncSession, app: FastAPI, fake: FakeOpenAI, url: str, **extra: Any
) -> Widget:
    widget = await make_chat_widget(db, app, fake)
    widget.tool_secret = app.state.secret_box.encrypt(SECRET)
    config = chat_config(fake, agent={"tools": [http_tool(url, **extra)]})
    await publish_unchecked(db, widget, config)
    return widget


ALLOWED = ["add", "order_status"]


def mcp_tool(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "mcp",
        "id": "orders",
        "label": "Asking the order system…",
        "url": url,
        "allowed_tools": ALLOWED,
        **extra,
    }


async def set_secret(
    db: AsyncSession, app: FastAPI, widget: Widget, url: str, value: str = mcp_server.SECRET
) -> None:
    db.add(
        WidgetMcpSecret(
            tenant_id=widget.tenant_id,
            widget_id=widget.id,
            tool_id="orders",
            secret=app.state.secret_box.encrypt(value),
            origin=origin_of(url),
        )
    )
    await db.flush()


async def mcp_widget(
    db: AsyncSession, app: FastAPI, fake: FakeOpenAI, *tools: dict[str, Any], **agent: Any
) -> Widget:
    widget = await make_chat_widget(db, app, fake)
    await publish_unchecked(db, widget, chat_config(fake, agent={"tools": list(tools), **agent}))
    return widget


class CustomIdStore(SqlStore):
    """Upstream's ``CustomSQLiteStore``: the SDK's id generators, overridden."""

    counter = 0

    def generate_thread_id(self, context: ChatContext) -> str:
        self.counter += 1
        return f"thr_custom_{self.counter}"

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: ChatContext
    ) -> str:
        self.counter += 1
        return f"{item_type}_custom_{self.counter}_{thread.id}"


# Chats raced through a real server: a module racing imports these fixtures by name.


@pytest.fixture
def sent_tasks() -> None:
    """Not the folder's: its app opens the test's transaction (on SQLite: the write lock)."""


@pytest.fixture
def tenant_checks() -> None:
    """Not the folder's: this app's units of work have connections of their own, and check
    for deleted tenants as production does."""


@pytest.fixture
async def racing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> AsyncIterator[RacingApp]:
    async with racing_app(settings, monkeypatch) as racing:
        loopback.app = racing.app
        try:
            yield racing
        finally:
            loopback.app = None


@pytest.fixture
async def http(loopback: LoopbackServer) -> AsyncIterator[httpx2.AsyncClient]:
    limits = httpx2.Limits(max_connections=100)
    async with httpx2.AsyncClient(base_url=loopback.url, timeout=60, limits=limits) as client:
        yield client


async def chat_widget(racing: RacingApp, fake: FakeOpenAI, **config: Any) -> tuple[Widget, Tenant]:
    """A published self-hosted widget answered by the fake model (committed), and its
    tenant."""
    app = racing.app
    async with racing.arranging() as session:
        tenant = await racing.tenant(session)
        widget = await create_widget(session, CLI, tenant, name="Raced", origins=[ORIGIN])
        key = app.state.secret_box.encrypt(fake.api_key)
        widget.model_key, widget.model_key_base_url = key, fake.base_url
        await publish(session, widget, chat_config(fake, **config))
    return widget, tenant


async def alice_of(racing: RacingApp, http: httpx2.AsyncClient, widget: Widget) -> Visitor:
    async with racing.arranging() as session:
        return await visitor(http, racing.app, session, widget, end_user=ALICE)


def shown(events: list[ThreadStreamEvent]) -> bool:
    """The visitor's message is shown as sent (the model has not answered yet)."""
    return any(isinstance(e, ThreadItemDoneEvent) for e in events)


def answering(events: list[ThreadStreamEvent]) -> bool:
    """The answer's first word is out (the visitor's message is written)."""
    return bool(deltas(events))
