"""The audit log over REST: one tenant's entries, newest first, filtered, in pages that
neither repeat nor skip an entry, each carrying the request that made the change."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.scopes import Scope
from kithost.models import AuditLogEntry, Role, Tenant
from kithost.models.base import utcnow
from tests.factories import Credentials, client_token, login, make_member, make_tenant, make_user

AUDIT = "/api/v1/tenants/acme/audit"
PLATFORM = "/api/v1/audit"
HOUR = timedelta(hours=1)
T0 = utcnow().replace(microsecond=0) - timedelta(days=1)


def entry(
    tenant: Tenant | None, action: str, at: datetime, target: str | None = None
) -> AuditLogEntry:
    return AuditLogEntry(
        tenant_id=None if tenant is None else tenant.id,
        created_at=at,
        actor_type="user",
        actor_id="u-1",
        action=action,
        target_type=None if target is None else "widget",
        target_id=target,
        data={"n": 1},
    )


@pytest.fixture
async def acme(db: AsyncSession) -> Tenant:
    return await make_tenant(db, "acme")


@pytest.fixture
async def viewer(app: FastAPI, db: AsyncSession, acme: Tenant) -> Credentials:
    return await login(app, db, await make_member(db, acme, Role.viewer))


async def listing(
    client: httpx2.AsyncClient, credentials: Credentials, **params: Any
) -> dict[str, Any]:
    response = await client.get(AUDIT, params=params, headers=credentials.headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_pages_follow_the_cursor_without_repeating_or_skipping(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Tenant, viewer: Credentials
) -> None:
    other = await make_tenant(db, "other")
    # Three entries share each timestamp: only the id orders them.
    mine = [entry(acme, "thing.done", T0 + timedelta(seconds=i // 3)) for i in range(11)]
    db.add_all(mine)
    db.add_all(entry(other, "thing.done", T0 + timedelta(seconds=i)) for i in range(3))
    db.add(entry(None, "thing.done", T0))
    await db.flush()
    expected = [str(e.id) for e in sorted(mine, key=lambda e: (e.created_at, e.id), reverse=True)]

    seen: list[str] = []
    position: dict[str, str] = {}
    for _ in range(len(mine)):
        page = await listing(client, viewer, action="thing.done", limit=3, **position)
        assert len(page["entries"]) <= 3
        seen += [e["id"] for e in page["entries"]]
        if page["next_cursor"] is None:
            break
        position = {"cursor": page["next_cursor"]}
    assert seen == expected

    # A new entry does not shift the pages of a listing under way.
    first = await listing(client, viewer, action="thing.done", limit=4)
    db.add(entry(acme, "thing.done", utcnow()))
    await db.flush()
    second = await listing(
        client, viewer, action="thing.done", limit=4, cursor=first["next_cursor"]
    )
    assert [e["id"] for e in first["entries"] + second["entries"]] == expected[:8]

    everything = await listing(client, viewer, limit=200)
    assert everything["next_cursor"] is None
    assert {"tenant.created", "thing.done"} == {e["action"] for e in everything["entries"]}
    assert len(everything["entries"]) == 1 + len(mine) + 1


async def test_filters_combine(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Tenant, viewer: Credentials
) -> None:
    other = await make_tenant(db, "other")
    widget = str(uuid.uuid4())
    rows = {
        "early": entry(acme, "widget.updated", T0, widget),
        "middle": entry(acme, "widget.updated", T0 + timedelta(minutes=1), widget),
        "late": entry(acme, "widget.published", T0 + timedelta(minutes=2), widget),
        "elsewhere": entry(acme, "widget.updated", T0 + timedelta(minutes=1), str(uuid.uuid4())),
        "foreign": entry(other, "widget.updated", T0 + timedelta(minutes=1), widget),
    }
    db.add_all(rows.values())
    await db.flush()

    async def found(**params: Any) -> set[str]:
        page = await listing(client, viewer, limit=200, **params)
        names = {str(e.id): name for name, e in rows.items()}
        return {names.get(e["id"], e["action"]) for e in page["entries"]}

    assert await found(target_id=widget) == {"early", "middle", "late"}
    assert await found(target_type="widget", action="widget.updated") == {
        "early",
        "middle",
        "elsewhere",
    }
    # since is inclusive, until exclusive.
    window = {
        "since": (T0 + timedelta(minutes=1)).isoformat(),
        "until": (T0 + timedelta(minutes=2)).isoformat(),
    }
    assert await found(**window) == {"middle", "elsewhere"}
    in_honolulu = {
        key: datetime.fromisoformat(at).astimezone(timezone(timedelta(hours=-10))).isoformat()
        for key, at in window.items()
    }
    assert await found(**in_honolulu) == {"middle", "elsewhere"}, "the same instants"
    assert await found(target_id=widget, since=T0.isoformat()) == {"early", "middle", "late"}
    assert await found(action="member.removed") == set()


async def test_entries_show_who_did_what_in_which_request(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, viewer: Credentials
) -> None:
    admin_user = await make_member(db, acme, Role.admin)
    admin = await login(app, db, admin_user)
    renamed = await client.patch(
        "/api/v1/tenants/acme",
        json={"name": "Acme Corp"},
        headers={**admin.headers, "X-Request-ID": "req-rename-1"},
    )
    assert renamed.status_code == 200
    [shown] = (await listing(client, viewer, action="tenant.renamed"))["entries"]
    assert shown == {
        "id": shown["id"],
        "created_at": shown["created_at"],
        "actor_type": "user",
        "actor_id": str(admin_user.id),
        "action": "tenant.renamed",
        "target_type": "tenant",
        "target_id": str(acme.id),
        "data": {"from": "Acme", "to": "Acme Corp"},
        "request_id": "req-rename-1",
    }
    assert datetime.fromisoformat(shown["created_at"]) > utcnow() - timedelta(minutes=1)


async def test_another_tenants_log_stays_hidden(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant
) -> None:
    other = await make_tenant(db, "other")
    db.add(entry(other, "private.thing", T0))
    await db.flush()
    outsider = await login(app, db, await make_member(db, other, Role.owner))
    hidden = await client.get(AUDIT, headers=outsider.headers)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "tenant_not_found")
    own = await client.get("/api/v1/tenants/other/audit", headers=outsider.headers)
    assert [e["action"] for e in own.json()["entries"]] == ["tenant.created", "private.thing"]
    assert str(acme.id) not in own.text


async def test_platform_admins_read_the_platforms_own_log(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, viewer: Credentials
) -> None:
    """What was done to no single tenant (a deleted tenant's entry, say) is the platform's
    log: platform admins read it at ``/api/v1/audit``, as a tenant's is read; no tenant's
    entries are in it, and no tenant's members or clients read it."""
    db.add_all(
        [
            entry(None, "tenant.deleted", T0),
            entry(None, "secrets.reencrypted", T0 + timedelta(minutes=1)),
            entry(acme, "widget.published", T0 + timedelta(minutes=2)),
        ]
    )
    await db.flush()
    admin = await login(app, db, await make_user(db, platform_admin=True))
    window = {"since": (T0 - timedelta(minutes=1)).isoformat(), "until": (T0 + HOUR).isoformat()}

    async def actions(**params: Any) -> tuple[list[str], str | None]:
        response = await client.get(PLATFORM, params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        return [e["action"] for e in page["entries"]], page["next_cursor"]

    assert await actions(**window) == (["secrets.reencrypted", "tenant.deleted"], None)
    first, cursor = await actions(**window, limit=1)
    assert (first, await actions(**window, cursor=cursor)) == (
        ["secrets.reencrypted"],
        (["tenant.deleted"], None),
    )
    assert await actions(**window, action="tenant.deleted") == (["tenant.deleted"], None)

    owner = await login(app, db, await make_member(db, acme, Role.owner))
    for credentials in (viewer, owner):
        refused = await client.get(PLATFORM, headers=credentials.headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "not_platform_admin")
    backend = await client_token(app, db, acme, list(Scope))
    assert (await client.get(PLATFORM, headers=backend.headers)).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"until": "2026-01-01"}, "until"),
        ({"until": "yesterday"}, "until"),
        # Times whose offset carries them past what UTC can hold.
        ({"since": "9999-12-31T23:59:59-14:00"}, "since"),
        ({"until": "0001-01-01T00:00:00+14:00"}, "until"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"actoin": "tenant.renamed"}, "actoin"),
    ],
)
async def test_bad_queries_are_refused(
    client: httpx2.AsyncClient,
    viewer: Credentials,
    params: dict[str, Any],
    field: str,
) -> None:
    response = await client.get(AUDIT, params=params, headers=viewer.headers)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "9999-12-31T23:59:59-14:00"}, "since"),
        ({"until": "0001-01-01T00:00:00+14:00"}, "until"),
        ({"since": "2026-01-01"}, "since"),
    ],
)
async def test_bad_times_in_the_platforms_log_are_refused(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    params: dict[str, Any],
    field: str,
) -> None:
    admin = await login(app, db, await make_user(db, platform_admin=True))
    response = await client.get(PLATFORM, params=params, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
