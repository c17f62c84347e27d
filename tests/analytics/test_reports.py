"""The read API over stored events: series, funnel, latency, error groups, exports,
deletion and retention, on both databases (events stored through the worker's own code,
``service.store``; the worker process itself is in ``test_pipeline.py``)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics import service
from kithost.analytics.facts import fact
from kithost.auth.scopes import Scope
from kithost.db import session_scope
from kithost.models import AnalyticsEvent, ErrorGroup, Tenant, Widget
from kithost.models.base import utcnow
from tests.analytics.helpers import (
    SHOP,
    USER,
    client_error,
    conversation,
    event,
    published_widget,
    server,
)
from tests.api.helpers import audit_actions
from tests.factories import Credentials, client_token


def stamped(events: list[dict[str, Any]], end_user: str | None = USER) -> list[dict[str, Any]]:
    """Client events as the API hands them to the task (the batch's end user copied in)."""
    return [{**e, "end_user": e.get("end_user", end_user)} for e in events]


async def store(
    app: FastAPI, widget: Widget, events: list[dict[str, Any]], end_user: str | None = USER
) -> int:
    """Store as the ingest task does, then run the rollup as beat does."""
    async with session_scope(app.state.sessionmaker, tenant=widget.tenant_id) as session:
        stored = await service.store(
            session, widget.tenant_id, widget.id, stamped(events, end_user), utcnow()
        )
    await service.rollup_pending(app.state.sessionmaker)
    return stored


class Subject(NamedTuple):
    widget: Widget
    tenant: Tenant
    creds: Credentials
    """An API client of the tenant with analytics:read, widgets:write and members:write."""
    url: str
    """The tenant's analytics routes."""


async def subject(app: FastAPI, db: AsyncSession, widget: Widget | None = None) -> Subject:
    """A published widget (a new one unless given), its tenant and a client of it."""
    widget = widget or await published_widget(db)
    tenant = await db.get(Tenant, widget.tenant_id)
    assert tenant is not None
    scopes = [Scope.analytics_read, Scope.widgets_write, Scope.members_write]
    creds = await client_token(app, db, tenant, scopes)
    return Subject(widget, tenant, creds, f"/api/v1/tenants/{tenant.slug}/analytics")


async def test_series_funnel_and_latency(
    client: httpx.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget, tenant, creds, url = await subject(app, db)
    events = [event("loader.loaded") for _ in range(5)] + [event("widget.opened") for _ in range(3)]
    events += [server("server.session.minted", mode="self_hosted", origin=SHOP)]
    events += conversation("th_a", 3, positive=True) + conversation("th_b", 1)
    events += [server("server.feedback", thread_id="th_b", kind="negative", items=2)]
    assert await store(app, widget, events) == len(events)

    async def total(metric: str, **params: Any) -> float:
        response = await client.get(
            f"{url}/series", params={"metric": metric, **params}, headers=creds.headers
        )
        assert response.status_code == 200, response.text
        return sum(p["value"] or 0 for p in response.json()["points"])

    expected = {
        "loads": 5,
        "opens": 3,
        "sessions": 1,
        "threads": 2,
        "messages": 4,
        "responses": 4,
        "tokens_in": 400,
        "tokens_out": 160,
        "feedback_up": 1,
        "feedback_down": 1,
        "client_errors": 0,
        "end_users": 1,
    }
    assert {m: await total(m) for m in expected} == expected
    assert await total("loads", interval="hour", tz="Asia/Kolkata") == 5
    assert await total("end_users", tz="America/New_York") == 1
    assert await total("loads", widget=str((await published_widget(db, tenant)).id)) == 0

    response = await client.get(
        f"{url}/series", params={"metric": "total_p95"}, headers=creds.headers
    )
    [p95] = [p["value"] for p in response.json()["points"] if p["value"] is not None]
    assert 1200 <= p95 <= 1344

    funnel = (await client.get(f"{url}/funnel", headers=creds.headers)).json()
    assert {
        k: funnel[k] for k in ("loads", "opens", "conversations", "engaged", "positive_feedback")
    } == {
        "loads": 5,
        "opens": 3,
        "conversations": 2,
        "engaged": 1,
        "positive_feedback": 1,
    }
    latency = (await client.get(f"{url}/latency", headers=creds.headers)).json()
    assert latency["responses"] == 4
    # Histogram buckets: the bucket's upper bound, within 12% of the real value.
    assert 300 <= latency["first_token_p50"] <= 336
    assert 1200 <= latency["total_p95"] <= 1344


async def test_feedback_reported_by_the_chat_store_reaches_the_funnel(
    client: httpx.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget, _tenant, creds, url = await subject(app, db)
    thumbs_up = fact("feedback", USER, thread_id="th_a", kind="positive", items=1)
    assert await store(app, widget, [*conversation("th_a", 1), thumbs_up]) == 4
    funnel = (await client.get(f"{url}/funnel", headers=creds.headers)).json()
    assert funnel["positive_feedback"] == 1


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


async def test_series_buckets_in_a_time_zone(
    client: httpx.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget, _tenant, creds, url = await subject(app, db)
    now = utcnow()
    paris_today = now.astimezone(ZoneInfo("Europe/Paris")).date()
    # 23:30 UTC falls on the next day in Paris: bucketed by UTC, the two events would not
    # land on the last two days. Counted from Paris's today, so the hour of the run never matters.
    late = datetime.combine(paris_today - timedelta(days=2), time(23, 30), tzinfo=UTC)
    at = int(late.timestamp() * 1000)
    await store(app, widget, [event("loader.loaded", time=at), event("loader.loaded")])
    since = (now - timedelta(days=3)).isoformat()
    response = await client.get(
        f"{url}/series",
        params={"metric": "loads", "tz": "Europe/Paris", "since": since, "until": now.isoformat()},
        headers=creds.headers,
    )
    body = response.json()
    assert response.status_code == 200
    starts = [datetime.fromisoformat(p["start"]) for p in body["points"]]
    assert all(
        s.hour == 0 and s.utcoffset() in (timedelta(hours=1), timedelta(hours=2)) for s in starts
    )
    assert [p["value"] for p in body["points"]][-2:] == [1, 1]


async def test_bad_report_queries_are_problems_with_the_field(
    client: httpx.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    _widget, _tenant, creds, url = await subject(app, db)
    url = f"{url}/series"
    now = utcnow()
    cases = [
        ({"metric": "loads", "tz": "Mars/Olympus"}, "tz"),
        ({"metric": "nope"}, "metric"),
        (
            {
                "metric": "loads",
                "since": now.isoformat(),
                "until": (now - timedelta(hours=1)).isoformat(),
            },
            "until",
        ),
        (
            {
                "metric": "loads",
                "interval": "hour",
                "since": (now - timedelta(days=60)).isoformat(),
            },
            "since",
        ),
        ({"metric": "loads", "since": "2026-01-01T00:00:00"}, "since"),
        ({"metric": "loads", "since": "0001-01-01T00:00:00+05:00"}, "since"),
        ({"metric": "loads", "until": "0001-01-02T00:00:00Z"}, "until"),
        ({"metric": "loads", "until": "9999-12-31T23:00:00-05:00"}, "until"),
    ]
    for params, field in cases:
        response = await client.get(url, params=params, headers=creds.headers)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    other = await published_widget(db)
    response = await client.get(
        url, params={"metric": "loads", "widget": str(other.id)}, headers=creds.headers
    )
    assert (response.status_code, response.json()["code"]) == (404, "widget_not_found")


async def test_error_groups_group_count_resolve_and_reopen(
    client: httpx.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget, tenant, creds, url = await subject(app, db)
    url = f"{url}/errors"
    await store(
        app, widget, [client_error("Request 1234 failed"), client_error("Request 98 failed")]
    )
    await store(app, widget, [client_error("Request 77 failed")], end_user="a:anon_other_visitor")
    await store(app, widget, [client_error("Socket closed", frame="at open (https://x/a.js:1:1)")])
    groups = (await client.get(url, headers=creds.headers)).json()["groups"]
    assert sorted((g["message"], g["count"], g["affected_end_users"]) for g in groups) == [
        ("Request <?> failed", 3, 2),
        ("Socket closed", 1, 1),
    ]
    group = next(g for g in groups if g["count"] == 3)
    assert group["hint"] == "Check the network"
    assert group["sample"]["message"] == "Request 77 failed"
    assert group["status"] == "open"

    page = (await client.get(url, params={"limit": 1}, headers=creds.headers)).json()
    rest = (
        await client.get(url, params={"cursor": page["next_cursor"]}, headers=creds.headers)
    ).json()
    assert len(page["groups"]) == len(rest["groups"]) == 1
    assert page["groups"][0]["id"] != rest["groups"][0]["id"]
    bad = await client.get(url, params={"cursor": "nope"}, headers=creds.headers)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "cursor")

    resolved = await client.post(f"{url}/{group['id']}/resolve", headers=creds.headers)
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved"
    assert "error_group.resolved" in await audit_actions(db, tenant.id)
    listed = await client.get(url, params={"status": "open"}, headers=creds.headers)
    assert [g["message"] for g in listed.json()["groups"]] == ["Socket closed"]

    await store(app, widget, [client_error("Request 5 failed")])
    detail = (await client.get(f"{url}/{group['id']}", headers=creds.headers)).json()
    assert (detail["status"], detail["count"], detail["resolved_at"]) == ("open", 4, None)


async def test_another_tenants_analytics_are_invisible(
    client: httpx.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    mine, theirs = await published_widget(db), await published_widget(db)
    await store(app, theirs, [event("loader.loaded"), client_error("Boom 1")])
    _, _tenant, creds, url = await subject(app, db, mine)
    series = (
        await client.get(f"{url}/series", params={"metric": "loads"}, headers=creds.headers)
    ).json()
    assert sum(p["value"] for p in series["points"]) == 0
    assert (await client.get(f"{url}/errors", headers=creds.headers)).json()["groups"] == []
    their_group = await db.scalar(
        select(ErrorGroup.id).where(ErrorGroup.tenant_id == theirs.tenant_id)
    )
    for method, path in (
        ("GET", f"{url}/errors/{their_group}"),
        ("POST", f"{url}/errors/{their_group}/resolve"),
    ):
        response = await client.request(method, path, headers=creds.headers)
        assert (response.status_code, response.json()["code"]) == (404, "error_group_not_found")
    export = await client.get(f"{url}/export/events.csv", headers=creds.headers)
    assert export.text.strip().splitlines() == ["id,widget_id,name,time,end_user,data"]
    deleted = await client.post(
        f"{url}/end-user-deletions", json={"end_user": USER}, headers=creds.headers
    )
    assert deleted.json()["removed"]["events"] == 0
    assert (
        await db.scalar(
            select(func.count())
            .select_from(AnalyticsEvent)
            .where(AnalyticsEvent.tenant_id == theirs.tenant_id)
        )
        == 2
    )


async def test_csv_exports(client: httpx.AsyncClient, app: FastAPI, db: AsyncSession) -> None:
    widget, _tenant, creds, url = await subject(app, db)
    formula = {**event("widget.opened"), "id": "-A1-A2-calc"}  # a valid id, and a formula
    await store(
        app,
        widget,
        [event("loader.loaded", {"page": "/pricing"}), formula, *conversation("th_x", 1)],
    )
    response = await client.get(f"{url}/export/events.csv", headers=creds.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["name"] for r in rows) == [
        "loader.loaded",
        "server.message.received",
        "server.response.finished",
        "server.thread.created",
        "widget.opened",
    ]
    opened = next(r for r in rows if r["name"] == "widget.opened")
    assert opened["id"] == "'-A1-A2-calc"  # quoted: spreadsheets would run it
    loaded = next(r for r in rows if r["name"] == "loader.loaded")
    assert (loaded["data"], loaded["end_user"][:4]) == ('{"page":"/pricing"}', "a:h_")
    # An anonymous device id is a credential: the export shows a keyed hash, never the id.
    assert USER.removeprefix("a:") not in response.text
    assert len({r["end_user"] for r in rows if r["end_user"]}) == 1

    response = await client.get(
        f"{url}/export/series.csv",
        params={"tz": "Europe/Paris"},
        headers=creds.headers,
    )
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert len(table) == 8  # 7 days back from now touch 8 local days
    assert sum(int(r["loads"]) for r in table) == 1
    assert sum(int(r["responses"]) for r in table) == 1
    assert [r["total_p50"] for r in table].count("") == 7


async def test_end_user_deletion_removes_their_rows_and_is_audited(
    client: httpx.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget, tenant, creds, url = await subject(app, db)
    other = "u:someone-else"
    await store(app, widget, [event("loader.loaded"), client_error("Boom 1")])
    await store(app, widget, [event("loader.loaded"), client_error("Boom 2")], end_user=other)
    response = await client.post(
        f"{url}/end-user-deletions", json={"end_user": USER}, headers=creds.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "end_user": USER,
        "removed": {"events": 2, "error_occurrences": 1, "chat": 0},
    }
    users = await db.scalars(
        select(AnalyticsEvent.end_user_id).where(AnalyticsEvent.tenant_id == tenant.id)
    )
    assert set(users) == {other}
    group = (await client.get(f"{url}/errors", headers=creds.headers)).json()["groups"][0]
    assert group["affected_end_users"] == 1
    assert group["sample"]["end_user"] == other
    assert "analytics.end_user_deleted" in await audit_actions(db, tenant.id)
    bad = await client.post(
        f"{url}/end-user-deletions", json={"end_user": "42"}, headers=creds.headers
    )
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "end_user")


async def test_retention_purges_old_events_and_error_groups(
    client: httpx.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget, tenant, creds, url = await subject(app, db)
    settings = f"{url}/settings"
    assert (await client.get(settings, headers=creds.headers)).json() == {"retention_days": 90}
    response = await client.put(settings, json={"retention_days": 3}, headers=creds.headers)
    assert response.json() == {"retention_days": 3}
    bad = await client.put(settings, json={"retention_days": 0}, headers=creds.headers)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "retention_days")
    four_days_ago = int((datetime.now(UTC) - timedelta(days=4)).timestamp() * 1000)
    await store(
        app, widget, [event("loader.loaded", time=four_days_ago), client_error("Old 1", frame="x")]
    )
    await store(app, widget, [event("loader.loaded"), client_error("New 1")])
    await db.execute(
        update(ErrorGroup)
        .where(ErrorGroup.tenant_id == tenant.id, ErrorGroup.frame == "x")
        .values(last_seen=datetime.now(UTC) - timedelta(days=4))
    )
    removed = await service.purge_all(app.state.sessionmaker)
    assert removed["events"] >= 1
    assert removed["error_groups"] >= 1
    names = await db.scalars(
        select(AnalyticsEvent.occurred_at).where(AnalyticsEvent.tenant_id == tenant.id)
    )
    assert all(at > datetime.now(UTC) - timedelta(days=3) for at in names)
    groups = (await client.get(f"{url}/errors", headers=creds.headers)).json()["groups"]
    assert [g["message"] for g in groups] == ["New <?>"]
