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
from kithost.kit.pseudonyms import exported_end_user
from kithost.models import (
    AnalyticsEvent,
    AuditLogEntry,
    ErrorGroup,
    SessionMint,
    WebhookDelivery,
    WebhookEndpoint,
    Widget,
    WidgetMode,
)
from kithost.models.base import utcnow
from tests.analytics.helpers import USER, client_error, event, store, subject
from tests.api.helpers import audit_actions
from tests.conversations.helpers import conversation


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
        "removed": {
            "events": 2,
            "error_occurrences": 1,
            "webhook_deliveries": 0,
            "chat": 0,
            "session_mints": 0,
        },
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


async def test_end_user_deletion_drops_their_error_samples(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """A sample names no anonymous end user: the erasure finds theirs by its event."""
    widget, _tenant, creds, url = await subject(app, db)
    await store(app, widget, [client_error("Boom")], end_user="u:someone-else")
    await store(app, widget, [client_error("Boom"), client_error("Socket closed")])
    await store(app, widget, [client_error("Timeout")], end_user="u:someone-else")
    response = await client.post(
        f"{url}/end-user-deletions", json={"end_user": USER}, headers=creds.headers
    )
    assert response.json()["removed"]["error_occurrences"] == 2
    groups = (await client.get(f"{url}/errors", headers=creds.headers)).json()["groups"]
    assert {g["message"]: (g["sample"], g["affected_end_users"]) for g in groups} == {
        "Boom": ({}, 1),
        "Socket closed": ({}, 0),
        "Timeout": (groups[0]["sample"], 1),
    }
    assert groups[0]["sample"]["end_user"] == "u:someone-else"


async def test_the_audit_log_names_an_erased_anonymous_end_user_by_pseudonym(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """members:read reads the log, and a device id mints sessions: the deletion of an
    anonymous end user is recorded with the ``a:h_…`` exports show; ``u:…`` as given."""
    _widget, tenant, creds, url = await subject(app, db)
    for end_user in (USER, "u:42"):
        response = await client.post(
            f"{url}/end-user-deletions", json={"end_user": end_user}, headers=creds.headers
        )
        assert response.status_code == 200, response.text
    entries = await db.scalars(
        select(AuditLogEntry).where(
            AuditLogEntry.tenant_id == tenant.id,
            AuditLogEntry.action == "analytics.end_user_deleted",
        )
    )
    keys = app.state.settings.keys()
    assert sorted(e.data["end_user"] for e in entries) == sorted(
        [exported_end_user(USER, keys), "u:42"]
    )


async def test_end_user_deletion_refuses_a_pseudonym(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """``a:h_…`` (how staff see an anonymous visitor) erases nothing: it is refused, naming
    ``end_user``, rather than answered with counts of 0."""
    widget, _tenant, creds, url = await subject(app, db)
    await store(app, widget, [event("loader.loaded")])
    pseudonym = exported_end_user(USER, app.state.settings.keys())
    response = await client.post(
        f"{url}/end-user-deletions", json={"end_user": pseudonym}, headers=creds.headers
    )
    assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "end_user")
    assert "visitor's own id" in response.json()["errors"][0]["message"]
    events = await db.scalars(
        select(AnalyticsEvent.end_user_id).where(AnalyticsEvent.tenant_id == widget.tenant_id)
    )
    assert list(events) == [USER]


async def test_retention_purges_old_events_and_error_groups(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget, tenant, creds, url = await subject(app, db)
    settings = f"{url}/settings"
    assert (await client.get(settings, headers=creds.headers)).json() == {"retention_days": 90}
    four_days_ago = int((datetime.now(UTC) - timedelta(days=4)).timestamp() * 1000)
    await store(
        app, widget, [event("loader.loaded", time=four_days_ago), client_error("Old 1", frame="x")]
    )
    await store(app, widget, [event("loader.loaded"), client_error("New 1")])
    response = await client.put(settings, json={"retention_days": 3}, headers=creds.headers)
    assert response.json() == {"retention_days": 3}
    bad = await client.put(settings, json={"retention_days": 0}, headers=creds.headers)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "retention_days")
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


async def _delivered(
    db: AsyncSession, widget: Widget, events: dict[str, tuple[str, str, int]]
) -> dict[str, str]:
    """Deliveries to an endpoint of the widget's tenant, by name: ``(type, thread, days
    ago)`` each, the thread named as ``conversation.idle`` names it (``data.id``) or as the
    other events do (``data.thread_id``), and in the column, as ``webhooks.service`` queues
    them. Their event ids, by name."""
    endpoint = WebhookEndpoint(
        tenant_id=widget.tenant_id, url="https://hooks.example.com/r", events=[], secret="s"
    )
    db.add(endpoint)
    await db.flush()
    for name, (event_type, thread_id, days_ago) in events.items():
        key = "id" if event_type == "conversation.idle" else "thread_id"
        db.add(
            WebhookDelivery(
                tenant_id=widget.tenant_id,
                endpoint_id=endpoint.id,
                event_id=f"msg_{name}",
                event_type=event_type,
                payload={"type": event_type, "data": {key: thread_id, "text": "said"}},
                thread_id=thread_id,
                created_at=utcnow() - timedelta(days=days_ago),
            )
        )
    await db.flush()
    return {name: f"msg_{name}" for name in events}


async def _deliveries_left(db: AsyncSession, widget: Widget) -> set[str]:
    rows = await db.scalars(
        select(WebhookDelivery.event_id).where(WebhookDelivery.tenant_id == widget.tenant_id)
    )
    return set(rows)


async def test_webhook_deliveries_about_an_end_user_go_with_their_data(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """A delivery's payload carries what the visitor said (``conversation.message``, its
    latest items in ``conversation.idle``): erasing the end user erases those."""
    widget, _tenant, creds, url = await subject(app, db)
    theirs = await conversation(db, widget, USER, ["My address is 1 Main St"])
    others = await conversation(db, widget, "u:someone-else", ["Hi"])
    ids = await _delivered(
        db,
        widget,
        {
            "message": ("conversation.message", theirs, 0),
            "idle": ("conversation.idle", theirs, 0),
            "feedback": ("feedback.created", theirs, 0),
            "another's": ("conversation.message", others, 0),
        },
    )
    response = await client.post(
        f"{url}/end-user-deletions", json={"end_user": USER}, headers=creds.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["removed"]["webhook_deliveries"] == 3
    assert await _deliveries_left(db, widget) == {ids["another's"]}


async def test_retention_purges_old_webhook_deliveries(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget, _tenant, creds, url = await subject(app, db)
    response = await client.put(
        f"{url}/settings", json={"retention_days": 3}, headers=creds.headers
    )
    assert response.status_code == 200, response.text
    thread = await conversation(db, widget, USER, ["Hello"])
    ids = await _delivered(
        db,
        widget,
        {"old": ("conversation.message", thread, 4), "new": ("conversation.message", thread, 2)},
    )
    removed = await service.purge_all(app.state.sessionmaker)
    assert removed["webhook_deliveries"] == 1
    assert await _deliveries_left(db, widget) == {ids["new"]}


async def test_hosted_mints_follow_the_retention_and_end_users_erasure(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """A hosted mint's row names its end user and page: erased with them, purged with the
    rest of the tenant's data."""
    widget, _tenant, creds, url = await subject(app, db)
    mints = {
        "theirs": (USER, 0),
        "another's": ("u:someone-else", 0),
        "old": ("u:someone-else", 4),
    }
    for name, (end_user, days_ago) in mints.items():
        db.add(
            SessionMint(
                tenant_id=widget.tenant_id,
                widget_id=widget.id,
                end_user_id=end_user,
                origin=f"https://{name}.example",
                mode=WidgetMode.hosted,
                created_at=utcnow() - timedelta(days=days_ago),
            )
        )
    await db.flush()

    async def left() -> set[str | None]:
        rows = await db.scalars(
            select(SessionMint.origin).where(SessionMint.tenant_id == widget.tenant_id)
        )
        return set(rows)

    erased = await client.post(
        f"{url}/end-user-deletions", json={"end_user": USER}, headers=creds.headers
    )
    assert erased.json()["removed"]["session_mints"] == 1
    assert await left() == {"https://another's.example", "https://old.example"}
    await client.put(f"{url}/settings", json={"retention_days": 3}, headers=creds.headers)
    assert (await service.purge_all(app.state.sessionmaker))["session_mints"] == 1
    assert await left() == {"https://another's.example"}
