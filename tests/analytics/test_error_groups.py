"""Client error groups through the API: grouping, counts, pages, resolving and reopening."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import httpx2
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.errors.repository import end_user_hash
from kithost.analytics.retention.service import purge_all
from kithost.models import ErrorGroupUser
from tests.analytics.helpers import USER, client_error, published_widget, store, subject
from tests.api.helpers import audit_actions


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
