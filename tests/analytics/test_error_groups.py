"""Client error groups through the API: grouping, counts, pages, resolving and reopening."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.errors.repository import end_user_hash
from kithost.analytics.errors.service import NEW_GROUPS_PER_HOUR
from kithost.analytics.ingestion import service as ingestion
from kithost.analytics.ingestion.tasks import ingest
from kithost.analytics.retention.service import purge_all
from kithost.auth.scopes import Scope
from kithost.db import session_scope
from kithost.models import ErrorGroupUser, WebhookDelivery
from kithost.models.base import utcnow
from tests.analytics.helpers import (
    NEW_GROUP_HOOK,
    SHOP,
    USER,
    client_error,
    made_up_error,
    now_ms,
    published_widget,
    store,
    subject,
)
from tests.api.helpers import audit_actions
from tests.factories import client_token
from tests.workers import RecordedTasks


async def test_error_groups_group_count_resolve_and_reopen(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
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


async def test_an_error_after_the_resolution_reopens_its_group_whatever_the_visitors_clock(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """A group reopened only for an occurrence dated after its resolution by the visitor's
    clock: a device ten minutes slow met the error again after the fix was called done, and
    the group stayed resolved."""
    widget, _tenant, creds, url = await subject(app, db)
    url = f"{url}/errors"
    await store(app, widget, [client_error("Request 1 failed")])
    group = (await client.get(url, headers=creds.headers)).json()["groups"][0]
    resolved = await client.post(f"{url}/{group['id']}/resolve", headers=creds.headers)
    assert resolved.status_code == 200

    slow = {**client_error("Request 2 failed"), "time": now_ms() - 10 * 60 * 1000}
    await store(app, widget, [slow])
    detail = (await client.get(f"{url}/{group['id']}", headers=creds.headers)).json()
    assert (detail["status"], detail["count"], detail["resolved_at"]) == ("open", 2, None)


async def test_ids_with_a_prefix_do_not_split_a_group(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """ChatKit's and most APIs' ids are a prefix and random letters and digits: only the
    digits were replaced, so the same error about each thread made a group (and a
    client_error.new_group webhook) of its own."""
    widget, _tenant, creds, url = await subject(app, db)
    await store(
        app,
        widget,
        [
            client_error(
                f"Thread thr_7{secrets.token_hex(6)} not found: req_5{secrets.token_hex(5)}"
            )
            for _ in range(3)
        ],
    )
    groups = (await client.get(f"{url}/errors", headers=creds.headers)).json()["groups"]
    assert [(g["message"], g["count"]) for g in groups] == [
        ("Thread thr_<?> not found: req_<?>", 3)
    ]


async def test_error_samples_show_no_anonymous_device_id(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """An anonymous end user's id mints sessions for their device: no answer about errors
    holds it (a sample names identified end users only), while they still count."""
    widget, _tenant, creds, url = await subject(app, db)
    url = f"{url}/errors"
    await store(app, widget, [client_error("Timeout")], end_user="u:42")
    await store(app, widget, [client_error("Timeout"), client_error("Socket closed")])
    listed = await client.get(url, headers=creds.headers)
    groups = {g["message"]: g for g in listed.json()["groups"]}
    detail = await client.get(f"{url}/{groups['Timeout']['id']}", headers=creds.headers)
    for answer in (listed, detail):
        assert answer.status_code == 200
        assert "a:anon_" not in answer.text
    assert groups["Timeout"]["affected_end_users"] == 2
    assert "end_user" not in groups["Timeout"]["sample"]
    await store(app, widget, [client_error("Timeout")], end_user="u:42")
    detail = await client.get(f"{url}/{groups['Timeout']['id']}", headers=creds.headers)
    assert detail.json()["sample"]["end_user"] == "u:42"


async def test_error_groups_of_a_widget_not_the_tenants_are_a_404(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """As the reports answer: an empty list would say the widget had no errors."""
    widget, _tenant, creds, url = await subject(app, db)
    await store(app, widget, [client_error("Timeout")])
    another = await published_widget(db)
    await store(app, another, [client_error("Timeout")])
    for unknown in (another.id, uuid.uuid4()):
        response = await client.get(
            f"{url}/errors", params={"widget": str(unknown)}, headers=creds.headers
        )
        assert (response.status_code, response.json()["code"]) == (404, "widget_not_found")
    mine = await client.get(
        f"{url}/errors", params={"widget": str(widget.id)}, headers=creds.headers
    )
    assert [g["widget_id"] for g in mine.json()["groups"]] == [str(widget.id)]


async def test_error_group_users_keep_no_end_user_id(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """What counts affected end users is a hash: an anonymous id there would be a credential
    (minting a session with it reads that visitor's threads), and counting needs none."""
    widget, tenant, creds, url = await subject(app, db)
    for end_user in (USER, "u:42", USER):
        await store(app, widget, [client_error("Boom")], end_user=end_user)
    [group] = (await client.get(f"{url}/errors", headers=creds.headers)).json()["groups"]
    assert (group["count"], group["affected_end_users"]) == (3, 2)
    kept = (
        await db.scalars(select(ErrorGroupUser).where(ErrorGroupUser.tenant_id == tenant.id))
    ).all()
    assert sorted(u.end_user_hash for u in kept) == sorted(
        end_user_hash(tenant.id, end_user) for end_user in (USER, "u:42")
    )
    assert not any(USER in str(vars(u)) or "u:42" in str(vars(u)) for u in kept)


async def test_an_end_user_stops_counting_once_their_occurrences_pass_the_retention(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """The group lives on while others meet it, but an end user who last met it before the
    retention is forgotten by the purge; meeting it again counts them anew."""
    widget, _tenant, creds, url = await subject(app, db)
    three_days_ago = int((datetime.now(UTC) - timedelta(days=3)).timestamp() * 1000)
    await store(app, widget, [{**client_error("Boom"), "time": three_days_ago}], end_user=USER)
    await store(app, widget, [client_error("Boom")], end_user="a:anon_" + "y" * 24)

    async def affected() -> tuple[int, int]:
        [group] = (await client.get(f"{url}/errors", headers=creds.headers)).json()["groups"]
        return group["count"], group["affected_end_users"]

    assert await affected() == (2, 2)
    response = await client.put(
        f"{url}/settings", json={"retention_days": 1}, headers=creds.headers
    )
    assert response.status_code == 200, response.text
    removed = await purge_all(app.state.sessionmaker)
    assert removed["error_group_users"] >= 1
    assert await affected() == (2, 1)
    await store(app, widget, [client_error("Boom")], end_user=USER)
    assert await affected() == (3, 2)


async def test_a_widget_gets_at_most_its_cap_of_new_error_groups_an_hour(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any page a widget allows may send client errors, 50 unlike one another a batch: each
    made a group and a client_error.new_group webhook to the tenant, without end. Past
    NEW_GROUPS_PER_HOUR in an hour they count into the hour's overflow group, unannounced;
    errors grouped before go on counting into their groups."""
    tasks = RecordedTasks()
    monkeypatch.setattr(app.state.celery, "send_task", tasks.record)
    widget, tenant, creds, url = await subject(app, db)
    hooks = await client_token(app, db, tenant, [Scope.webhooks_write])
    created = await client.post(
        f"/api/v1/tenants/{tenant.slug}/webhooks", json=NEW_GROUP_HOOK, headers=hooks.headers
    )
    assert created.status_code == 201, created.text
    now = utcnow()

    async def report(errors: list[dict[str, Any]], at: datetime = now) -> None:
        """Send a batch as the loader does, then store it as the ingest task does."""
        response = await client.post(
            f"/v1/embed/{widget.public_key}/events",
            json={"end_user": USER, "events": errors},
            headers={"Origin": SHOP},
        )
        assert response.status_code == 202, response.text
        for tenant_id, widget_id, events in tasks.take(ingest.name):
            async with session_scope(app.state.sessionmaker, tenant=widget.tenant_id) as session:
                await ingestion.store(
                    session, uuid.UUID(tenant_id), uuid.UUID(widget_id), events, at
                )

    async def announced() -> int:
        found = select(func.count()).where(
            WebhookDelivery.tenant_id == tenant.id,
            WebhookDelivery.event_type == "client_error.new_group",
        )
        return await db.scalar(found) or 0

    async def groups() -> dict[str, Any]:
        answer = await client.get(f"{url}/errors", params={"limit": 200}, headers=creds.headers)
        assert answer.status_code == 200, answer.text
        return {g["fingerprint"]: g for g in answer.json()["groups"]}

    await report([client_error("Timeout")])
    for _ in range(3):
        await report([made_up_error() for _ in range(50)])
    await report([client_error("Timeout"), made_up_error()])

    cap = NEW_GROUPS_PER_HOUR
    assert cap == 100
    assert await announced() == cap
    shown = await groups()
    assert len(shown) == cap + 1, "the cap's groups and the hour's overflow group"
    [overflow] = [g for g in shown.values() if g["kind"] == "overflow"]
    assert overflow["message"].startswith("Too many distinct errors")
    assert overflow["count"] == 1 + 3 * 50 + 1 - cap
    assert overflow["sample"]["message"].startswith("Made up ")
    [timeout] = [g for g in shown.values() if g["message"] == "Timeout"]
    assert timeout["count"] == 2
    assert sum(g["count"] for g in shown.values()) == 1 + 3 * 50 + 2, "every one counted"

    await report([made_up_error()], at=now + timedelta(hours=1))
    assert await announced() == cap + 1, "the next hour has room again"
    assert len(await groups()) == cap + 2
