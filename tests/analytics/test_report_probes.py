"""Probes of the tenant's analytics API as a customer and an attacker use it: ranges at odd
offsets and time zones, hostile time zone names, widget filters, CSV cells, error-group
cursors; on both databases. Each report's figures of one range must agree (a day's total
is its hours' sum in the same zone) or the answer is a 422 naming the field."""

from __future__ import annotations

import base64
import csv
import io
from datetime import datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.scopes import Scope
from kithost.models.base import utcnow
from tests.analytics.helpers import Subject, client_error, event, published_widget, store, subject
from tests.factories import client_token


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _get(client: httpx2.AsyncClient, who: Subject, path: str, **params: str) -> Any:
    response = await client.get(f"{who.url}/{path}", params=params, headers=who.creds.headers)
    assert response.status_code == 200, (path, params, response.text)
    return response.json()


async def _total(client: httpx2.AsyncClient, who: Subject, **params: str) -> float:
    series = await _get(client, who, "series", metric="loads", **params)
    return sum(p["value"] or 0 for p in series["points"])


async def test_days_at_a_quarter_hour_offset_count_the_ranges_first_hour(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """A range from local midnight to local midnight in Asia/Kathmandu (+05:45) starts at
    18:15 UTC: the reports count its hours from 18:00 UTC, and so did the hourly series,
    but the daily series dropped that first hour (it starts before the first day's
    midnight), so a day's total was less than its hours' sum and the funnel's."""
    who = await subject(app, db)
    zone = ZoneInfo("Asia/Kathmandu")
    day = utcnow().astimezone(zone).date() - timedelta(days=2)
    since = datetime.combine(day, time(), zone)
    until = since + timedelta(days=1)
    inside = since + timedelta(minutes=5)  # 18:20 UTC, in the hour of 18:00 UTC
    late = until - timedelta(minutes=5)
    events = [event("loader.loaded", time=_ms(inside)), event("loader.loaded", time=_ms(late))]
    assert await store(app, who.widget, events, end_user="u:1") == 2
    bounds = {"since": since.isoformat(), "until": until.isoformat(), "tz": "Asia/Kathmandu"}
    assert await _total(client, who, interval="hour", **bounds) == 2
    assert await _total(client, who, interval="day", **bounds) == 2
    users = await _get(client, who, "series", metric="end_users", interval="day", **bounds)
    assert [p["value"] for p in users["points"]] == [1]
    funnel = await _get(client, who, "funnel", since=bounds["since"], until=bounds["until"])
    assert funnel["loads"] == 2


async def test_hour_buckets_at_plus_14_and_a_range_ending_mid_hour(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    who = await subject(app, db)
    hour = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    events = [event("loader.loaded", time=_ms(hour + timedelta(minutes=m))) for m in (5, 70, 130)]
    assert await store(app, who.widget, events) == 3
    bounds = {
        "since": (hour + timedelta(minutes=30)).astimezone(ZoneInfo("Pacific/Kiritimati")),
        "until": (hour + timedelta(minutes=150)).astimezone(ZoneInfo("Asia/Kathmandu")),
    }
    params = {k: v.isoformat() for k, v in bounds.items()}
    for tz in ("Pacific/Kiritimati", "Asia/Kathmandu", "Pacific/Chatham", "UTC"):
        hourly = await _get(client, who, "series", interval="hour", tz=tz, **params)
        assert [p["value"] for p in hourly["points"]] == [1, 1, 1], tz
        assert await _total(client, who, interval="day", tz=tz, **params) == 3, tz


async def test_days_of_a_zone_whose_midnight_is_skipped(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """America/Havana skips from 00:00 to 01:00 when summer time starts, and Pacific/Apia
    skipped 30 December 2011: each day bucket starts at a moment its zone's clocks showed
    (Havana's 8 March at 01:00-04:00, not a 00:00-05:00 they never showed), one after the
    other (Apia's skipped day was a bucket of no length, at the same instant as the next)."""
    who = await subject(app, db)
    cases = [
        ("America/Havana", "2026-03-06T12:00:00Z", "2026-03-10T12:00:00Z", 5),
        ("America/Santiago", "2026-09-04T12:00:00Z", "2026-09-08T12:00:00Z", 5),
        ("Pacific/Apia", "2011-12-28T00:00:00Z", "2012-01-02T00:00:00Z", 6),
    ]
    for tz, since, until, days in cases:
        series = await _get(client, who, "series", tz=tz, since=since, until=until)
        labels = [p["start"] for p in series["points"]]
        starts = [datetime.fromisoformat(label) for label in labels]
        assert len(starts) == days, (tz, labels)
        assert all(a < b for a, b in pairwise(starts)), (tz, labels)
        shown = [s.astimezone(ZoneInfo(tz)) for s in starts]
        assert [(s.time(), s.utcoffset()) for s in shown] == [
            (s.time(), s.utcoffset()) for s in starts
        ], (tz, labels)


async def test_time_zone_names_that_are_no_zone_are_a_problem_on_tz(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    who = await subject(app, db)
    names = ["", "../../etc/passwd", "/etc/localtime", "America", "zone.tab", "tzdata.zi"]
    names += ["Etc/../UTC", "UTC ", "x" * 65, "Europe/Paris\n"]
    for name in names:
        for path in ("series", "export/series.csv"):
            response = await client.get(
                f"{who.url}/{path}", params={"tz": name}, headers=who.creds.headers
            )
            assert response.status_code == 422, (name, path, response.text)
            assert [e["field"] for e in response.json()["errors"]] == ["tz"], name


async def test_ranges_too_long_far_or_upside_down_are_problems_with_the_field(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    who = await subject(app, db)
    cases: list[tuple[dict[str, str], str]] = [
        ({"since": "2000-01-01T00:00:00Z", "until": "2099-12-31T00:00:00Z"}, "since"),
        ({"since": "1999-12-31T23:59:59Z"}, "since"),
        ({"until": "2100-01-01T00:00:01Z"}, "until"),
        ({"since": "1970-01-01T00:00:00Z", "until": "1970-01-02T00:00:00Z"}, "since"),
        ({"since": "2026-01-01T12:00:00-12:00", "until": "2026-01-02T00:00:00+14:00"}, "until"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
    ]
    for params, field in cases:
        # A century is no series (too many buckets), but a funnel or an export may span it.
        paths = ["series", "export/series.csv"]
        if "until" not in params or "2099" not in params["until"]:
            paths += ["funnel", "latency", "widgets", "export/events.csv"]
        for path in paths:
            response = await client.get(
                f"{who.url}/{path}", params=params, headers=who.creds.headers
            )
            assert response.status_code == 422, (path, params, response.text)
            assert field in [e["field"] for e in response.json()["errors"]], (path, params)
    hours = {"interval": "hour", "since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00Z"}
    response = await client.get(f"{who.url}/series", params=hours, headers=who.creds.headers)
    assert [e["field"] for e in response.json()["errors"]] == ["since"]
    # 1000 days fit; the earliest and latest instants too.
    edge = {"since": "2097-04-06T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    assert len((await _get(client, who, "series", **edge))["points"]) == 1000
    funnel = await _get(client, who, "funnel", since="2000-01-01T00:00:00Z")
    assert funnel["loads"] == 0


async def test_a_widget_filter_naming_a_deleted_or_foreign_widget_is_404(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    who = await subject(app, db)
    gone = await published_widget(db, who.tenant)
    await store(app, gone, [event("loader.loaded"), client_error("Gone 1")])
    widgets = f"/api/v1/tenants/{who.tenant.slug}/widgets/{gone.id}"
    editor = await client_token(app, db, who.tenant, [Scope.widgets_read, Scope.widgets_write])
    etag = (await client.get(widgets, headers=editor.headers)).headers["etag"]
    deleted = await client.delete(widgets, headers={**editor.headers, "If-Match": etag})
    assert deleted.status_code == 204, deleted.text
    foreign = await published_widget(db)
    for widget in (gone, foreign):
        for path in ("series", "funnel", "latency", "widgets", "errors", "export/events.csv"):
            response = await client.get(
                f"{who.url}/{path}", params={"widget": str(widget.id)}, headers=who.creds.headers
            )
            assert (response.status_code, response.json()["code"]) == (404, "widget_not_found")


async def test_csv_cells_stay_text(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """Whatever a visitor's page sends, each events.csv row is one record whose cells no
    spreadsheet runs: JSON with newlines, quotes and any script in ``data``."""
    who = await subject(app, db)
    hostile = '=HYPERLINK("http://x")\r\n+1\t@a\u2028\u00e9\U0001f600"\''
    events = [
        {**event("widget.opened", {"note": hostile}), "id": "-cmd_abcd"},
        client_error(hostile, frame=hostile),
    ]
    assert await store(app, who.widget, events, end_user="u:=1+1") == 2
    response = await client.get(f"{who.url}/export/events.csv", headers=who.creds.headers)
    rows = list(csv.reader(io.StringIO(response.text)))[1:]
    assert len(rows) == 2
    for row in rows:
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), row
    assert "'-cmd_abcd" in [r[0] for r in rows]
    assert {r[4] for r in rows} == {"u:=1+1"}


async def test_error_group_cursors_tampered_are_a_problem_on_cursor(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    who = await subject(app, db)
    for n in range(3):
        await store(app, who.widget, [client_error(f"Distinct {'abc'[n]} failure")])
    page = await _get(client, who, "errors", limit="2")
    assert len(page["groups"]) == 2
    assert page["next_cursor"]
    rest = await _get(client, who, "errors", limit="2", cursor=page["next_cursor"])
    assert len(rest["groups"]) == 1
    assert rest["next_cursor"] is None
    # Another filter's cursor is a position: it neither fails nor shows another tenant's.
    assert (await _get(client, who, "errors", status="resolved", cursor=page["next_cursor"]))[
        "groups"
    ] == []

    def raw(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    for cursor in (
        "!!!",
        raw("2026-01-01T00:00:00 " + "0" * 32),
        raw("2026-01-01T00:00:00+00:00 not-a-uuid"),
        raw("0001-01-01T00:00:00+01:00 " + "0" * 32),
        raw("2026-01-01T00:00:00+00:00 \x00"),
        raw("x" * 5000),
    ):
        response = await client.get(
            f"{who.url}/errors", params={"cursor": cursor}, headers=who.creds.headers
        )
        assert response.status_code == 422, (cursor, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["cursor"]


async def test_error_groups_of_one_instant_page_through_each_once(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """Groups last seen at the same millisecond (one batch) page by their ids."""
    who = await subject(app, db)
    at = _ms(utcnow())
    batch = [{**client_error(f"Failure {c} happened"), "time": at} for c in "abcde"]
    assert await store(app, who.widget, batch) == 5
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await _get(client, who, "errors", **params)
        seen += [g["id"] for g in page["groups"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5


async def test_a_stack_whose_top_line_ends_in_blanks_groups_across_builds(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """A frame's line and column numbers are left out of the fingerprint only at the end of
    its top line: a stack whose first line ended in spaces made a group per build."""
    who = await subject(app, db)
    frames = [
        f"at send (https://shop.example.com/app.js:{n}:5)  \n  at run (x.js:1:1)" for n in (10, 42)
    ]
    frames.append("at send (https://shop.example.com/app.js:7:9)")
    assert await store(app, who.widget, [client_error("Failed to fetch", f) for f in frames]) == 3
    groups = (await _get(client, who, "errors"))["groups"]
    assert [g["count"] for g in groups] == [3]


async def test_odd_instants_are_read_or_refused_on_their_field(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """Offsets with seconds, fractions finer than microseconds, epoch numbers and text:
    read as the instant they name, or 422 on the field, never a 500."""
    who = await subject(app, db)
    odd = [
        "2026-01-01T00:00:00+05:45:30",
        "2026-01-01T00:00:00.123456789Z",
        "2026-01-01T00:00:00+23:59",
        "2026-01-01T00:00:00-23:59",
        "2026-01-01T00:00:00+24:00",
        "1767225600",
        "1767225600000",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "yesterday",
        "2026-01-01T00:00:00Z\x00",
        "",
    ]
    for value in odd:
        for path in ("series", "funnel", "export/events.csv"):
            params = {"since": value, "until": "2026-01-08T00:00:00Z"}
            response = await client.get(
                f"{who.url}/{path}", params=params, headers=who.creds.headers
            )
            assert response.status_code in (200, 422), (value, path, response.text)
            if response.status_code == 422:
                fields = [e["field"] for e in response.json().get("errors", [])]
                assert fields == ["since"], (value, path, response.text)
