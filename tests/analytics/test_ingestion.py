"""Ingestion. ``POST /v1/embed/{pk}/events``: who may send, what is kept, what the broker
receives; and storing a batch as the ingest task does.

The app sends to a queue of this module's own on the real Redis; no worker consumes it, so
each test reads back exactly the task messages its requests sent.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.analytics.events import LOADER_HINTS, MAX_BODY_BYTES, MAX_DATA_DEPTH, SESSION_HINTS
from kithost.analytics.ingestion.endpoints import WIDGETS_IN_FLIGHT, EventsHandover
from kithost.analytics.ingestion.tasks import ingest
from kithost.db import session_scope
from kithost.models import AnalyticsEvent, Widget
from kithost.settings import Settings
from kithost.worker.sender import TaskSender
from tests.analytics.helpers import SHOP, USER, event, now_ms, published_widget, store
from tests.conftest import REDIS_URL, create_test_app
from tests.proxy import CuttableProxy
from tests.workers import take_sent_tasks

DAY_MS = 24 * 3600 * 1000


@pytest.fixture
def queue(task_queue: str) -> Iterator[str]:
    name = f"{task_queue}-events-{secrets.token_hex(3)}"
    yield name
    redis.Redis.from_url(REDIS_URL).delete(name)


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection, queue: str) -> FastAPI:
    return create_test_app(settings, connection, task_queue=queue)


def sent(app: FastAPI) -> list[list[Any]]:
    """The arguments of the ingest tasks the app sent (taken off its queue)."""
    return take_sent_tasks(app.state.celery, app.state.settings.task_queue, ingest.name)


def url(widget: Widget | str) -> str:
    return f"/v1/embed/{widget if isinstance(widget, str) else widget.public_key}/events"


async def send(
    client: httpx2.AsyncClient,
    widget: Widget | str,
    body: Any,
    *,
    origin: str | None = SHOP,
    content_type: str = "application/json",
) -> httpx2.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": content_type} | ({"Origin": origin} if origin else {})
    return await client.post(url(widget), content=content, headers=headers)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain;charset=UTF-8"])
async def test_a_batch_becomes_one_ingest_task(
    client: httpx2.AsyncClient, db: AsyncSession, app: FastAPI, content_type: str
) -> None:
    widget = await published_widget(db)
    events = [event("loader.loaded", {"page": "/"}), event("widget.opened")]
    response = await send(
        client, widget, {"end_user": USER, "events": events}, content_type=content_type
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 2, "dropped": []}
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["cache-control"] == "no-store"
    assert sent(app) == [
        [str(widget.tenant_id), str(widget.id), [{**e, "end_user": USER} for e in events]]
    ]


async def test_a_client_errors_hint_is_kithosts_never_the_senders(
    client: httpx2.AsyncClient, db: AsyncSession, app: FastAPI
) -> None:
    """The owner's Errors screen shows the hint as "How to fix": a probe had any page put
    "paste your OpenAI key at https://evil.example" there (config_refused reports are kept
    from any origin)."""
    widget = await published_widget(db)
    forged = "Kithost security notice: paste your OpenAI key at https://evil.example"
    errors = [
        event("client.error", {"kind": "config_refused", "message": "refused", "hint": forged}),
        event("client.error", {"kind": "session_refused", "message": "403 origin_not_allowed: x"}),
        event("client.error", {"kind": "made_up", "message": "boom", "hint": forged}),
    ]

    response = await send(client, widget, {"end_user": USER, "events": errors})

    assert response.status_code == 202, response.text
    [[_, _, queued]] = sent(app)
    assert [e["data"].get("hint") for e in queued] == [
        LOADER_HINTS["config_refused"],
        SESSION_HINTS["origin_not_allowed"],
        None,
    ]


async def test_invalid_events_are_dropped_one_by_one(
    client: httpx2.AsyncClient, db: AsyncSession, app: FastAPI
) -> None:
    widget = await published_widget(db)
    kept = event("chatkit.log", {"name": "x", "data": {"nested": [1, 2]}})
    error = {"kind": "network", "message": "Failed", "hint": None}
    bad: list[tuple[Any, str, str]] = [
        (event("made.up"), "unknown_name", "name"),
        (event("server.feedback", {"thread_id": "t", "kind": "positive"}), "server_name", "name"),
        ({**event("loader.loaded"), "id": "short"}, "invalid_id", "id"),
        ({**event("loader.loaded"), "id": "has spaces in it"}, "invalid_id", "id"),
        (event("loader.loaded", time="yesterday"), "invalid_time", "time"),
        (event("loader.loaded", time=now_ms() + DAY_MS), "invalid_time", "time"),
        (event("loader.loaded", time=now_ms() - 8 * DAY_MS), "too_old", "time"),
        (event("loader.loaded", data=[1]), "invalid_data", "data"),
        (event("client.error", {"kind": "network"}), "invalid_data", "data.message"),
        (event("client.error", {**error, "message": "x" * 1001}), "data_too_large", "data.message"),
        (event("client.error", {**error, "extra": 1}), "invalid_data", "data.extra"),
        (event("chatkit.log", {"blob": "x" * 3000}), "data_too_large", "data"),
        (event("chatkit.log", {f"k{i}": i for i in range(17)}), "data_too_large", "data"),
        (event("chatkit.log", {"deep": ["a\x00"]}), "invalid_data", "data"),
        (event("client.error", {**error, "message": "a\x00b"}), "invalid_data", "data"),
        ({**event("loader.loaded"), "colour": "red"}, "invalid_event", "colour"),
        ({**kept}, "duplicate_id", "id"),
        ("not an object", "invalid_event", ""),
    ]
    body = {"end_user": None, "events": [kept, *(raw for raw, _, _ in bad)]}
    response = await send(client, widget, body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    assert [(d["index"], d["code"], d["field"]) for d in answer["dropped"]] == [
        (i, code, field) for i, (_, code, field) in enumerate(bad, start=1)
    ]
    assert all(d["message"] for d in answer["dropped"])
    [[_, _, events]] = sent(app)
    assert events == [{**kept, "end_user": None}]


def nested(depth: int) -> bytes:
    """JSON of ``depth`` arrays one inside the other (written out: Python's ``json`` would
    recurse as deep)."""
    return b"[" * depth + b"]" * depth


async def test_data_nested_too_deep_is_dropped_not_a_500(
    client: httpx2.AsyncClient, db: AsyncSession, app: FastAPI
) -> None:
    """A body's JSON may nest a thousand levels within 64 KiB, deeper than the checks of
    ``data`` could recurse: such an event was a 500, the whole batch lost."""
    widget = await published_widget(db)
    kept = event("chatkit.log", {"deep": "NEST"})
    too_deep = event("chatkit.log", {"deep": "NEST"})
    crashed = event("client.error", {"kind": "network", "message": "Failed", "extra": "NEST"})
    events = [  # data itself is a level
        json.dumps(kept).encode().replace(b'"NEST"', nested(MAX_DATA_DEPTH - 1)),
        json.dumps(too_deep).encode().replace(b'"NEST"', nested(MAX_DATA_DEPTH)),
        json.dumps(crashed).encode().replace(b'"NEST"', nested(1000)),
    ]
    body = b'{"end_user": null, "events": [' + b", ".join(events) + b"]}"
    assert len(body) < MAX_BODY_BYTES

    response = await send(client, widget, body)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    assert [(d["index"], d["code"], d["field"]) for d in answer["dropped"]] == [
        (1, "invalid_data", "data"),
        (2, "invalid_data", "data"),
    ]
    [[_, _, queued]] = sent(app)
    assert [e["id"] for e in queued] == [kept["id"]]


async def test_a_batch_without_valid_events_sends_nothing(
    client: httpx2.AsyncClient, db: AsyncSession, app: FastAPI
) -> None:
    widget = await published_widget(db)
    response = await send(client, widget, {"end_user": None, "events": [event("nope")]})
    assert response.status_code == 202
    assert response.json()["accepted"] == 0
    assert sent(app) == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "field"),
    [
        (b"{not json", "application/json", 400, "invalid_json", None),
        (b"\xff\xfe", "text/plain", 400, "invalid_json", None),
        (b'{"events": [{"time": NaN}]}', "application/json", 400, "invalid_json", None),
        ([], "application/json", 422, "validation_failed", ""),
        ({"end_user": None}, "application/json", 422, "validation_failed", "events"),
        ({"events": []}, "application/json", 422, "validation_failed", "events"),
        ({"events": {"id": 1}}, "application/json", 422, "validation_failed", "events"),
        ({"events": [{}] * 51}, "application/json", 422, "validation_failed", "events"),
        (
            {"end_user": "bob", "events": [{}]},
            "application/json",
            422,
            "validation_failed",
            "end_user",
        ),
        (
            {"end_user": "a:anon\x00", "events": [{}]},
            "application/json",
            422,
            "validation_failed",
            "end_user",
        ),
        # No session names such an end user (both mints refuse them), and an identified
        # one is shown in error groups' samples: a bidi override reorders what is read.
        *(
            (
                {"end_user": user, "events": [{}]},
                "application/json",
                422,
                "validation_failed",
                "end_user",
            )
            for user in ("u:\u202eevil", "a:anon\x01", "u:zero\u200bwidth")
        ),
        ({"events": [{}], "extra": 1}, "application/json", 422, "validation_failed", "extra"),
        (b"x" * (MAX_BODY_BYTES + 1), "application/json", 413, "payload_too_large", None),
        ({"events": [{}]}, "application/xml", 415, "unsupported_media_type", None),
        ({"events": [{}]}, "", 415, "unsupported_media_type", None),
    ],
)
async def test_malformed_batches_are_problems(
    client: httpx2.AsyncClient,
    db: AsyncSession,
    app: FastAPI,
    body: Any,
    content_type: str,
    status: int,
    code: str,
    field: str | None,
) -> None:
    widget = await published_widget(db)
    response = await send(client, widget, body, content_type=content_type)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    if field is not None:
        assert [e["field"] for e in problem["errors"]] == [field]
    # The page may read why (the origin is allowed), and nothing was sent.
    assert response.headers["access-control-allow-origin"] == SHOP
    assert sent(app) == []


@pytest.mark.parametrize("origin", [None, "null", "file:///tmp/page.html"])
async def test_missing_or_opaque_origins_are_refused_without_cors(
    client: httpx2.AsyncClient, db: AsyncSession, app: FastAPI, origin: str | None
) -> None:
    widget = await published_widget(db)
    body = {"end_user": None, "events": [event("loader.loaded")]}
    for response in (
        await send(client, widget, body, origin=origin),
        await client.options(url(widget), headers={"Origin": origin} if origin else {}),
    ):
        assert (response.status_code, response.json()["code"]) == (403, "origin_not_allowed")
        assert "access-control-allow-origin" not in response.headers
    assert sent(app) == []


@pytest.mark.parametrize("origin", ["https://evil.example.net", "http://shop.example.com"])
async def test_foreign_origins_may_only_report_that_they_were_refused(
    client: httpx2.AsyncClient, db: AsyncSession, app: FastAPI, origin: str
) -> None:
    """The loader of a page the widget does not allow beacons a config_refused error, so
    the tenant sees where the widget is (mis)placed; nothing else of it is kept, and the
    page may read no answer (no CORS, no preflight)."""
    widget = await published_widget(db)
    preflight = await client.options(url(widget), headers={"Origin": origin})
    assert (preflight.status_code, preflight.json()["code"]) == (403, "origin_not_allowed")
    refused = event("client.error", {"kind": "config_refused", "message": f"refused for {origin}"})
    others = [event("loader.loaded"), event("client.error", {"kind": "network", "message": "x"})]
    body = {"end_user": None, "events": [*others, refused]}
    response = await send(client, widget, body, origin=origin, content_type="text/plain")
    assert (response.status_code, response.json()["accepted"]) == (202, 1)
    assert "access-control-allow-origin" not in response.headers
    [[_tenant, _widget, events]] = sent(app)
    assert [e["id"] for e in events] == [refused["id"]]


async def test_a_flood_of_refusals_keeps_one_a_minute_per_origin_and_client(
    client: httpx2.AsyncClient, db: AsyncSession, app: FastAPI
) -> None:
    """Refusals come from anyone, unauthenticated: a page reloading (or a script) sending
    thousands keeps one a minute per widget, origin and client address, never a queue of
    them that would delay other tenants' events."""
    widget = await published_widget(db)

    def refusal(origin: str) -> dict[str, Any]:
        data = {"kind": "config_refused", "message": f"refused for {origin}"}
        return event("client.error", data)

    foreign, other = "https://evil.example.net", "https://misplaced.example.org"
    answers = []
    for _ in range(20):
        body = {"end_user": None, "events": [refusal(foreign), refusal(foreign)]}
        answers.append(await send(client, widget, body, origin=foreign))
    body = {"end_user": None, "events": [refusal(other)]}
    answers.append(await send(client, widget, body, origin=other))
    assert {a.status_code for a in answers} == {202}
    assert [a.json()["accepted"] for a in answers] == [1] + [0] * 19 + [1]
    kept = [e["data"]["message"] for _, _, events in sent(app) for e in events]
    assert kept == [f"refused for {foreign}", f"refused for {other}"]


async def test_a_client_rotating_its_ipv6_addresses_keeps_one_refusal_a_minute(
    db: AsyncSession, app: FastAPI
) -> None:
    """The refusals kept a minute are counted per client as the mint limit counts them
    (``client_key``): an IPv6 client by its /64, within which it has an address for every
    request, so each refusal was kept."""
    widget = await published_widget(db)
    foreign = "https://evil.example.net"
    refusal = {"kind": "config_refused", "message": f"refused for {foreign}"}
    accepted = []
    for n in range(5):
        transport = httpx2.ASGITransport(app=app, client=(f"2001:db8:7:1:{n:x}::1", 40000))
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
            body = {"end_user": None, "events": [event("client.error", refusal)]}
            answer = await send(c, widget, body, origin=foreign)
        assert answer.status_code == 202, answer.text
        accepted.append(answer.json()["accepted"])
    assert accepted == [1, 0, 0, 0, 0]


async def test_unknown_widget_is_404(client: httpx2.AsyncClient, app: FastAPI) -> None:
    response = await send(client, "pk_unknown", {"events": [event("loader.loaded")]})
    assert (response.status_code, response.json()["code"]) == (404, "widget_not_found")
    assert sent(app) == []


async def test_the_framed_page_on_kithosts_origin_may_send(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget = await published_widget(db)
    own = app.state.settings.base_url
    response = await send(client, widget, {"events": [event("chatkit.ready")]}, origin=own)
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == own
    assert len(sent(app)) == 1


async def test_preflight_allows_json_posts_from_allowed_origins(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    widget = await published_widget(db)
    response = await client.options(
        url(widget),
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"] == "Content-Type"


async def test_overload_is_shed_with_retry_after(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget = await published_widget(db)
    app.state.part(EventsHandover).in_flight = app.state.settings.events_max_in_flight
    response = await send(client, widget, {"events": [event("loader.loaded")]})
    assert (response.status_code, response.json()["code"]) == (429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["access-control-allow-origin"] == SHOP
    assert sent(app) == []


async def test_a_widget_flooding_the_process_leaves_other_widgets_their_place(
    settings: Settings,
    connection: AsyncConnection,
    db: AsyncSession,
    queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A widget sends as many batches at once as the process has places, and the broker
    holds them: it takes places until half are taken, and the rest is refused at once (429
    with ``Retry-After``), so another widget (another tenant's) still gets its whole share
    accepted. Once the broker answers, the held batches are queued: none is lost unanswered."""
    flooded, other = await published_widget(db), await published_widget(db)
    places = 4 * WIDGETS_IN_FLIGHT
    share, busy = places // WIDGETS_IN_FLIGHT, places // 2
    app = create_test_app(settings, connection, task_queue=queue, events_max_in_flight=places)
    held: list[str] = []
    settled: asyncio.Queue[None] = asyncio.Queue()
    """An item as each flooding batch is held at the broker, and as each is answered."""
    release = asyncio.Event()
    publish = TaskSender.send

    async def holding(sender: TaskSender, name: str, args: list[Any], argsrepr: str) -> None:
        if args[1] == str(flooded.id):
            held.append(args[1])
            settled.put_nowait(None)
            await release.wait()
        await publish(sender, name, args, argsrepr)

    monkeypatch.setattr(TaskSender, "send", holding)
    batch = {"events": [event("loader.loaded")]}
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        flood = [asyncio.create_task(send(client, flooded, batch)) for _ in range(places)]
        for task in flood:
            task.add_done_callback(lambda _: settled.put_nowait(None))
        for _ in range(places):
            await asyncio.wait_for(settled.get(), 10)
        refused = [t.result() for t in flood if t.done()]
        assert (len(held), len(refused)) == (busy, places - busy)
        assert {(r.status_code, r.json()["code"]) for r in refused} == {(429, "rate_limited")}
        for response in refused:
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["access-control-allow-origin"] == SHOP
        others = await asyncio.gather(*(send(client, other, batch) for _ in range(share)))
        assert [r.status_code for r in others] == [202] * share
        release.set()
        assert [(await r).status_code for r in flood].count(202) == busy
    queued = [args[1] for args in sent(app)]
    assert sorted(queued) == sorted([str(flooded.id)] * busy + [str(other.id)] * share)


async def test_an_unreachable_broker_is_503_not_a_silent_drop(
    settings: Settings, connection: AsyncConnection, db: AsyncSession
) -> None:
    widget = await published_widget(db)
    app = create_test_app(settings, connection, broker_url="redis://127.0.0.1:9/0")
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await send(client, widget, {"events": [event("loader.loaded")]})
    assert (response.status_code, response.json()["code"]) == (503, "events_unavailable")
    assert response.headers["retry-after"] == "5"


async def test_the_broker_going_away_and_back_loses_nothing_silently(
    settings: Settings, connection: AsyncConnection, db: AsyncSession
) -> None:
    """Redis cut under a running app: 503 (the loader sends the batch again), then 202 with
    the batch queued once it is back, in the same process."""
    widget = await published_widget(db)
    direct = urlsplit(REDIS_URL)
    proxy = CuttableProxy(direct.hostname or "127.0.0.1", direct.port or 6379)
    await proxy.start()
    app = create_test_app(
        settings, connection, broker_url=f"redis://127.0.0.1:{proxy.port}{direct.path}"
    )
    transport = httpx2.ASGITransport(app=app)
    batch = {"events": [event("loader.loaded")]}
    try:
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await send(client, widget, batch)).status_code == 202
            await proxy.cut()
            down = await send(client, widget, batch)
            assert (down.status_code, down.json()["code"]) == (503, "events_unavailable")
            await proxy.restore()
            assert (await send(client, widget, batch)).status_code == 202
        # In a thread: the proxy serves on this event loop. (Other tests' tasks may wait in
        # the session's queue too.)
        queued = await asyncio.to_thread(sent, app)
        accepted = [args for args in queued if args[1] == str(widget.id)]
        assert len(accepted) == 2, "the two accepted batches, and only those"
    finally:
        await proxy.cut()


async def test_rows_the_database_refuses_leave_the_rest_of_the_batch_stored(
    app: FastAPI, db: AsyncSession
) -> None:
    """Events queued by an older sender with NUL characters (PostgreSQL refuses them), and
    one the database refuses (a thread id longer than its column), cost only themselves."""
    widget = await published_widget(db)
    good = [event("loader.loaded"), event("widget.opened")]
    bad = [
        event("chatkit.log", {"text": "a\x00b"}),
        event("loader.loaded", end_user="a:anon\x00"),
        event("chatkit.log", {"thread_id": "t" * 65}),
    ]
    on_postgresql = db.get_bind().dialect.name == "postgresql"
    assert await store(app, widget, [good[0], *bad, good[1]]) == 2 + (not on_postgresql)
    async with session_scope(app.state.sessionmaker, tenant=widget.tenant_id) as session:
        stored = await session.scalars(
            select(AnalyticsEvent.event_id).where(AnalyticsEvent.tenant_id == widget.tenant_id)
        )
        assert {e["id"] for e in good} <= set(stored)
