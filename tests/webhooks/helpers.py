"""A webhook receiver on loopback (a real HTTP server in a thread) that records what it
gets and answers with the status (and body) the test sets; told to, it holds each request
(no answer) until released, or one request by its arrival until its gate opens, or drips its
answer a byte at a time. It counts the requests it is handling at once. Endpoints and
deliveries made as rows (``hook_at``, ``pending``), for the tests of attempts, made as a
worker makes them (``attempt``); the ``receiver`` and ``sent`` fixtures (a module imports
them by name), the deliveries sent run as the worker would, and a chat tenant with an
endpoint."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Role, Tenant, WebhookDelivery, WebhookEndpoint, Widget
from kithost.models.base import utcnow
from kithost.webhooks import delivery
from kithost.webhooks.service import new_secret
from kithost.webhooks.tasks import deliver
from tests.chat.helpers import make_chat_widget
from tests.factories import login, make_member
from tests.fakes.openai_server import FakeOpenAI
from tests.workers import RecordedTasks


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    status: int = 200
    received: list[Received] = field(default_factory=list)
    hold: bool = False
    """Keep each request waiting, unanswered, until ``release`` is set."""
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    gates: dict[int, threading.Event] = field(default_factory=dict)
    """The request arriving ``n``-th (from 1) waits, unanswered, until ``gates[n]`` is set."""
    body: bytes | None = None
    """The answer's body (None: ``ok``, or ``nope …`` for a failure status)."""
    answer: Callable[[bytes], bytes] | None = None
    """Makes the answer's body of the request's (before ``body``)."""
    drip: float | None = None
    """Answer the status at once, then a byte of body every ``drip`` seconds, without end
    (until released)."""
    in_flight: int = 0
    """Requests arrived and not yet answered in full."""
    most_in_flight: int = 0
    """The most ``in_flight`` has been."""
    _counting: threading.Condition = field(
        default_factory=threading.Condition, init=False, repr=False
    )

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with receiver._counting:
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                try:
                    self._answer()
                finally:
                    with receiver._counting:
                        receiver.in_flight -= 1

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._counting:
                    receiver.received.append(Received(headers, body))
                    gate = receiver.gates.get(len(receiver.received))
                    receiver._counting.notify_all()
                receiver.arrived.set()
                if receiver.hold:
                    receiver.release.wait(timeout=120)
                if gate is not None:
                    gate.wait(timeout=120)
                try:
                    self.send_response(receiver.status)
                    self.end_headers()
                    if receiver.drip is not None:
                        while not receiver.release.wait(receiver.drip):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                    elif receiver.answer is not None:
                        self.wfile.write(receiver.answer(body))
                    elif receiver.body is not None:
                        self.wfile.write(receiver.body)
                    else:
                        self.wfile.write(b"ok" if receiver.status < 300 else b"nope " * 200)
                except OSError:  # the sender went away while held
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def has_received(self, count: int) -> bool:
        """Wait (10 s at most) until ``count`` requests have arrived; whether they have."""
        with self._counting:
            return self._counting.wait_for(lambda: len(self.received) >= count, timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/kithost"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release.set()
        for gate in self.gates.values():
            gate.set()
        self._server.shutdown()
        self._server.server_close()


async def hook_at(
    app: FastAPI, db: AsyncSession, tenant: Tenant, url: str, *, slow: bool = True
) -> WebhookEndpoint:
    """An endpoint of ``tenant`` at ``url``: slow (its last attempt was), unless not."""
    hook = WebhookEndpoint(
        tenant_id=tenant.id,
        url=url,
        events=["widget.published"],
        secret=app.state.secret_box.encrypt(new_secret()),
        slow_since=utcnow() if slow else None,
    )
    db.add(hook)
    await db.flush()
    return hook


async def pending(
    db: AsyncSession, hook: WebhookEndpoint, *, thread: str | None = None
) -> tuple[str, list[Any]]:
    """The task of a new delivery to ``hook``, not attempted: a test event, or a message of
    ``thread``'s (deleted with it)."""
    event_type, data = (
        ("webhook.test", {}) if thread is None else ("conversation.message", {"thread_id": thread})
    )
    made = WebhookDelivery(
        tenant_id=hook.tenant_id,
        endpoint_id=hook.id,
        event_id=f"msg_{uuid.uuid4().hex}",
        event_type=event_type,
        payload={"type": event_type, "timestamp": utcnow().isoformat(), "data": data},
        thread_id=thread,
    )
    db.add(made)
    await db.flush()
    return deliver.name, [str(hook.tenant_id), str(made.id)]


async def attempt(app: FastAPI, task: tuple[str, list[Any]]) -> delivery.Attempt:
    """Attempt the delivery of ``task``, as the worker would (a hand-off's too: its third
    argument; a backlog's, its fourth; one it makes goes to the app's Celery once its unit
    of work commits)."""
    tenant_id, delivery_id, *rest = task[1]
    return await delivery.attempt(
        app.state.sessionmaker,
        app.state.secret_box,
        app.state.settings.outbound_policy,
        uuid.UUID(tenant_id),
        uuid.UUID(delivery_id),
        hand_off=rest[:1] == [True],
        backlog=datetime.fromisoformat(rest[1]) if rest[1:] else None,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def sent(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any]]]:
    """The tasks the app sends after its commits, kept (the test runs them, as a worker)."""
    tasks = RecordedTasks()
    monkeypatch.setattr(app.state.celery, "send_task", tasks.record)
    return tasks.sent


async def run_deliveries(app: FastAPI, sent: list[tuple[str, list[Any]]]) -> list[bool]:
    """Attempt every delivery sent so far, as the worker would; whether each went through."""
    outcomes = [(await attempt(app, task)).delivered for task in sent if task[0] == deliver.name]
    sent.clear()
    return outcomes


async def chat_tenant_with_hook(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    receiver: Receiver,
    **endpoint: Any,
) -> tuple[Widget, str]:
    """A tenant with a self-hosted widget and an endpoint (``endpoint``: its fields);
    the widget and the endpoint's secret."""
    widget = await make_chat_widget(db, app, fake_openai)
    tenant = await db.get(Tenant, widget.tenant_id)
    assert tenant is not None
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    created = await client.post(
        f"/api/v1/tenants/{tenant.slug}/webhooks",
        json={"url": receiver.url, **endpoint},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return widget, secret
