"""Retention and erasure through the API: end-user deletion (analytics' rows and every data
owner's, chat's included) and the retention setting with the purge it drives (the purge in a
real worker: ``test_pipeline.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.retention import service
from kithost.models import AnalyticsEvent, ErrorGroup
from tests.analytics.helpers import USER, client_error, event, store, subject
from tests.api.helpers import audit_actions


async def test_end_user_deletion_removes_their_rows_and_is_audited(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
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
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
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
