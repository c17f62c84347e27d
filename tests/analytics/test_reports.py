"""The read API over stored events: series, funnel, latency and the CSV exports, and
tenant isolation of every report, on both databases (events stored through the worker's own
code, ``ingestion.service.store``; the worker process itself is in ``test_pipeline.py``)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.facts import fact
from kithost.models import (
    TENANT_WIDE,
    AnalyticsEvent,
    AnalyticsRollup,
    ErrorGroup,
    RollupPeriod,
)
from kithost.models.base import utcnow
from tests.analytics.helpers import (
    SHOP,
    USER,
    client_error,
    conversation,
    event,
    published_widget,
    server,
    store,
    subject,
)


async def test_series_funnel_and_latency(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
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


async def test_a_count_per_widget_in_one_request(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    busy, tenant, creds, url = await subject(app, db)
    quiet, idle = await published_widget(db, tenant), await published_widget(db, tenant)
    assert await store(app, busy, [event("loader.loaded") for _ in range(3)]) == 3
    assert await store(app, quiet, [event("loader.loaded"), event("widget.opened")]) == 2
    assert await store(app, await published_widget(db), [event("loader.loaded")]) == 1

    async def totals(**params: str) -> list[tuple[str, int]]:
        response = await client.get(f"{url}/widgets", params=params, headers=creds.headers)
        assert response.status_code == 200, response.text
        return [(w["widget_id"], w["value"]) for w in response.json()["widgets"]]

    # Most first; the idle widget and another tenant's have none here.
    assert await totals() == [(str(busy.id), 3), (str(quiet.id), 1)]
    assert await totals(metric="opens") == [(str(quiet.id), 1)]
    assert await totals(metric="loads", widget=str(quiet.id)) == [(str(quiet.id), 1)]
    assert await totals(widget=str(idle.id)) == []
    earlier = (utcnow() - timedelta(days=30)).isoformat()
    assert await totals(until=earlier) == []
    # Whole UTC days: the daily rollups answer, the same.
    tomorrow = datetime.combine(utcnow().date() + timedelta(days=1), time(), UTC)
    week = {"since": (tomorrow - timedelta(days=7)).isoformat(), "until": tomorrow.isoformat()}
    assert await totals(**week) == [(str(busy.id), 3), (str(quiet.id), 1)]
    yesterday = {"since": week["since"], "until": (tomorrow - timedelta(days=1)).isoformat()}
    assert await totals(**yesterday) == []
    # A day only the daily rollups hold: whole days count it, hours do not look there.
    db.add(
        AnalyticsRollup(
            tenant_id=tenant.id,
            period=RollupPeriod.day,
            start=tomorrow - timedelta(days=3),
            widget_id=idle.id,
            loads=5,
            first_token_ms=[],
            total_ms=[],
        )
    )
    await db.flush()
    assert await totals(**week) == [(str(idle.id), 5), (str(busy.id), 3), (str(quiet.id), 1)]
    assert await totals() == [(str(busy.id), 3), (str(quiet.id), 1)]

    for params, field in [({"metric": "total_p95"}, "metric"), ({"metric": "end_users"}, "metric")]:
        refused = await client.get(f"{url}/widgets", params=params, headers=creds.headers)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]
    theirs = await published_widget(db)
    refused = await client.get(
        f"{url}/widgets", params={"widget": str(theirs.id)}, headers=creds.headers
    )
    assert (refused.status_code, refused.json()["code"]) == (404, "widget_not_found")


async def test_end_users_count_a_visitor_of_two_widgets_once(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    shop, tenant, creds, url = await subject(app, db)
    blog = await published_widget(db, tenant)
    assert await store(app, shop, [event("widget.opened")]) == 1
    assert await store(app, blog, [event("widget.opened")]) == 1
    assert await store(app, blog, [event("widget.opened")], end_user="u:42") == 1
    assert await store(app, await published_widget(db), [event("widget.opened")]) == 1  # theirs
    tomorrow = datetime.combine(utcnow().date() + timedelta(days=1), time(), UTC)
    days = {"since": (tomorrow - timedelta(days=7)).isoformat(), "until": tomorrow.isoformat()}

    async def total(**params: str) -> float:
        response = await client.get(
            f"{url}/series", params={"metric": "end_users", **params}, headers=creds.headers
        )
        assert response.status_code == 200, response.text
        return sum(p["value"] or 0 for p in response.json()["points"])

    for window in [{"interval": "hour"}, days, {"tz": "Asia/Kolkata"}]:
        assert await total(**window) == 2, window  # USER visited both widgets: one
        assert await total(widget=str(shop.id), **window) == 1, window
        assert await total(widget=str(blog.id), **window) == 2, window
    tenant_wide = await client.get(
        f"{url}/series",
        params={"metric": "end_users", "widget": str(TENANT_WIDE)},
        headers=creds.headers,
    )
    assert (tenant_wide.status_code, tenant_wide.json()["code"]) == (404, "widget_not_found")


async def test_feedback_reported_by_the_chat_store_reaches_the_funnel(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget, _tenant, creds, url = await subject(app, db)
    thumbs_up = fact("feedback", USER, thread_id="th_a", kind="positive", items=1)
    assert await store(app, widget, [*conversation("th_a", 1), thumbs_up]) == 4
    funnel = (await client.get(f"{url}/funnel", headers=creds.headers)).json()
    assert funnel["positive_feedback"] == 1


async def test_series_buckets_in_a_time_zone(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
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


async def test_daily_series_count_only_the_hours_of_the_range(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """The dashboard asks for 7 days ending at the next hour: its daily buckets counted the
    whole first and last days (from the daily rollups), so their total disagreed with the
    hourly series, the count per widget, the funnel and latency of the very same range."""
    widget, _tenant, creds, url = await subject(app, db)
    now = utcnow()
    since = datetime.combine(now.date() - timedelta(days=3), time(12), UTC)
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    before, inside = since - timedelta(hours=6), since + timedelta(hours=1)
    events = [
        event("loader.loaded", time=int(before.timestamp() * 1000)),
        *(event("loader.loaded", time=int(inside.timestamp() * 1000)) for _ in range(2)),
        event("loader.loaded"),
    ]
    assert await store(app, widget, events, end_user="u:7") == 4
    bounds = {"since": since.isoformat(), "until": until.isoformat()}

    async def total(metric: str, **params: str) -> float:
        response = await client.get(
            f"{url}/series", params={"metric": metric, **bounds, **params}, headers=creds.headers
        )
        assert response.status_code == 200, response.text
        return sum(p["value"] or 0 for p in response.json()["points"])

    for params in [{"interval": "hour"}, {}, {"tz": "America/New_York"}, {"tz": "Asia/Kolkata"}]:
        assert await total("loads", **params) == 3, params
    # The first day counts u:7 once, in its hours within the range.
    assert await total("end_users") == 2
    widgets = await client.get(f"{url}/widgets", params=bounds, headers=creds.headers)
    assert [w["value"] for w in widgets.json()["widgets"]] == [3]
    funnel = await client.get(f"{url}/funnel", params=bounds, headers=creds.headers)
    assert funnel.json()["loads"] == 3
    export = await client.get(f"{url}/export/series.csv", params=bounds, headers=creds.headers)
    assert sum(int(r["loads"]) for r in csv.DictReader(io.StringIO(export.text))) == 3


async def test_the_funnel_counts_the_hours_the_series_count(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """A range not on the hour: the series, the count per widget and latency count the
    hours from ``since``'s to ``until``'s (the rollups hold no finer), while the funnel
    counted the raw events of the exact range, so its loads disagreed with theirs."""
    widget, _tenant, creds, url = await subject(app, db)
    hour = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    early, late = hour + timedelta(minutes=10), hour + timedelta(minutes=50)
    events = [event("loader.loaded", time=int(early.timestamp() * 1000))]
    events += [event("loader.loaded", time=int(late.timestamp() * 1000))]
    events += conversation("th_a", 1)  # now: the last hour
    assert await store(app, widget, events) == 5
    # After the conversation's facts (``until`` is exclusive), on a minute: never before them
    # on the hour, which would leave their hour out.
    until = (utcnow() + timedelta(minutes=1)).replace(second=0, microsecond=0)
    bounds = {"since": (hour + timedelta(minutes=30)).isoformat(), "until": until.isoformat()}

    async def get(path: str, **params: str) -> Any:
        response = await client.get(
            f"{url}/{path}", params={**bounds, **params}, headers=creds.headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    series = await get("series", metric="loads", interval="hour")
    assert sum(p["value"] for p in series["points"]) == 2
    assert [w["value"] for w in (await get("widgets"))["widgets"]] == [2]
    assert (await get("latency"))["responses"] == 1
    funnel = await get("funnel")
    assert (funnel["loads"], funnel["conversations"]) == (2, 1)


async def test_bad_report_queries_are_problems_with_the_field(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
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


async def test_every_report_refuses_a_range_ending_where_or_before_it_starts(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """The series refused it; the funnel, latency, the count per widget and both exports
    answered zeros (and an empty file) as if the range had nothing in it."""
    _widget, _tenant, creds, url = await subject(app, db)
    since = datetime(2026, 3, 2, tzinfo=UTC)
    for until in (since, since - timedelta(days=1)):
        params = {"since": since.isoformat(), "until": until.isoformat()}
        for path in (
            "series",
            "funnel",
            "latency",
            "widgets",
            "export/series.csv",
            "export/events.csv",
        ):
            response = await client.get(f"{url}/{path}", params=params, headers=creds.headers)
            assert response.status_code == 422, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert [e["field"] for e in response.json()["errors"]] == ["until"], path


async def test_another_tenants_analytics_are_invisible(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
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


async def test_csv_exports(client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession) -> None:
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
