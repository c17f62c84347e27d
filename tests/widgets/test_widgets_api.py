"""Widgets over REST: creation, listing, changes under If-Match, deletion, tenancy, audit."""

from __future__ import annotations

import asyncio
import uuid

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kithost.auth.principals import CLI, ClientPrincipal, TenantAccess, UserPrincipal
from kithost.auth.roles import ALL_SCOPES
from kithost.errors import PreconditionFailed
from kithost.models import ApiClient, Role, Tenant, Widget
from kithost.widgets import repository, service
from kithost.widgets.config import WidgetConfig
from tests.conftest import concurrent_sessions
from tests.factories import login, make_member, make_tenant
from tests.widgets.helpers import WIDGETS, Acme, audit_entries, create, url

DEFAULTS = WidgetConfig().model_dump(mode="json")


async def test_a_new_widget_has_the_defaults_an_etag_and_its_origins(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    created = await create(
        client,
        acme,
        name=" Shop chat ",
        origins=["https://Shop.Example.com", "http://localhost:3000"],
    )
    widget = created.json()
    assert created.headers["ETag"] == '"1"'
    assert widget["public_key"].startswith("pk_")
    assert widget == {
        "id": widget["id"],
        "name": "Shop chat",
        "public_key": widget["public_key"],
        "config": DEFAULTS,
        "allow_insecure_origins": False,
        "published_version": None,
        "revision": 1,
        "created_at": widget["created_at"],
        "updated_at": widget["updated_at"],
        "has_identity_secret": False,
        "has_model_key": False,
        "has_tool_secret": False,
        "new_tool_secret": None,
        "attention": [],
    }

    got = await client.get(url(widget), headers=acme.headers)
    assert (got.status_code, got.json(), got.headers["ETag"]) == (200, widget, '"1"')
    origins = await client.get(url(widget, "/origins"), headers=acme.headers)
    assert [o["origin"] for o in origins.json()] == [
        "http://localhost:3000",
        "https://shop.example.com",
    ]
    [entry] = await audit_entries(db, acme.tenant, "widget.created")
    assert (entry.target_type, entry.target_id) == ("widget", widget["id"])
    assert entry.data["before"] == {}
    assert entry.data["after"]["name"] == "Shop chat"
    assert entry.data["after"]["config.launcher"] == DEFAULTS["launcher"]
    assert entry.data["after"]["origins"] == ["http://localhost:3000", "https://shop.example.com"]


async def test_a_widget_is_created_with_a_configuration(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    config = {"placement": "direct", "launcher": {"label": "Ask us"}}
    widget = (await create(client, acme, config=config)).json()
    assert widget["config"]["placement"] == "direct"
    assert widget["config"]["launcher"] == {**DEFAULTS["launcher"], "label": "Ask us"}

    bad = await client.post(
        WIDGETS,
        json={"name": "x", "config": {"agent": {"temperature": 9}}, "origins": ["https://ok.test"]},
        headers=acme.headers,
    )
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "config.agent.temperature")
    for origins, field in [
        (["https://ok.example", "ftp://files.example"], "origins.1"),
        (["http://intranet.example"], "origins.0"),
    ]:
        refused = await client.post(
            WIDGETS, json={"name": "x", "origins": origins}, headers=acme.headers
        )
        assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, field)
    insecure = await create(
        client, acme, origins=["http://intranet.example"], allow_insecure_origins=True
    )
    assert insecure.json()["allow_insecure_origins"] is True
    listed = await client.get(WIDGETS, headers=acme.headers)
    assert [w["id"] for w in listed.json()] == [widget["id"], insecure.json()["id"]]


async def test_widgets_are_listed_in_creation_order_a_page_at_a_time(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    ids = [(await create(client, acme, name=name)).json()["id"] for name in "cab"]
    await service.create_widget(db, CLI, await make_tenant(db, "other"), name="x")

    listed = await client.get(WIDGETS, headers=acme.headers)
    assert [w["id"] for w in listed.json()] == ids
    first = await client.get(WIDGETS, params={"limit": 2}, headers=acme.headers)
    assert [w["id"] for w in first.json()] == ids[:2]
    rest = await client.get(WIDGETS, params={"after": ids[1]}, headers=acme.headers)
    assert [w["id"] for w in rest.json()] == ids[2:]

    cases: list[tuple[dict[str, str | int], str]] = [
        ({"after": str(uuid.uuid4())}, "after"),
        ({"limit": 201}, "limit"),
    ]
    for params, field in cases:
        refused = await client.get(WIDGETS, params=params, headers=acme.headers)
        assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, field)


async def test_widgets_are_found_by_text_their_name_holds(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    names = ["Support EN", "support FR", "Sales", "100% off_deals"]
    ids = {name: (await create(client, acme, name=name)).json()["id"] for name in names}
    await service.create_widget(db, CLI, await make_tenant(db, "other"), name="Support X")

    async def found(q: str, **params: str | int) -> list[str]:
        listed = await client.get(WIDGETS, params={"q": q, **params}, headers=acme.headers)
        assert listed.status_code == 200, listed.text
        return [w["name"] for w in listed.json()]

    assert await found("SUPPORT") == ["Support EN", "support FR"]  # any case, the tenant's
    assert await found("support", limit=1) == ["Support EN"]
    assert await found("support", after=ids["Support EN"]) == ["support FR"]
    assert await found("% off_") == ["100% off_deals"]
    assert await found("s_") == []  # the text as it is: not a LIKE pattern
    assert await found("%") == ["100% off_deals"]

    for q, kind in [
        ("", "string_too_short"),
        ("x" * 101, "string_too_long"),
        ("a\x00b", "nul_character"),
    ]:
        refused = await client.get(WIDGETS, params={"q": q}, headers=acme.headers)
        assert refused.status_code == 422, refused.text
        assert [(e["field"], e["type"]) for e in refused.json()["errors"]] == [("q", kind)]


async def test_changes_need_the_current_etag(client: httpx2.AsyncClient, acme: Acme) -> None:
    widget = url(await create(client, acme))
    for headers in (acme.headers, acme.matching("*")):
        missing = await client.patch(widget, json={"name": "x"}, headers=headers)
        assert (missing.status_code, missing.json()["code"]) == (428, "precondition_required")
    for stale in ('"0"', 'W/"1"', "1"):
        refused = await client.patch(widget, json={"name": "x"}, headers=acme.matching(stale))
        assert (refused.status_code, refused.json()["code"]) == (412, "precondition_failed")
        assert refused.headers["ETag"] == '"1"'

    first = await client.patch(widget, json={"name": "First"}, headers=acme.matching('"1"'))
    assert (first.status_code, first.headers["ETag"], first.json()["revision"]) == (200, '"2"', 2)
    second = await client.patch(widget, json={"name": "Second"}, headers=acme.matching('"1"'))
    assert (second.status_code, second.json()["code"]) == (412, "precondition_failed")
    got = await client.get(widget, headers=acme.headers)
    assert (got.json()["name"], got.headers["ETag"]) == ("First", '"2"')

    listed = await client.patch(widget, json={"name": "Third"}, headers=acme.matching('"1", "2"'))
    assert (listed.status_code, listed.headers["ETag"]) == (200, '"3"')


async def test_of_two_writers_that_read_the_same_revision_one_fails(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    widget_id = uuid.UUID((await create(client, acme)).json()["id"])
    access = TenantAccess(acme.tenant, UserPrincipal(acme.owner, uuid.uuid4()), ALL_SCOPES, None)
    # This unit of work reads revision 1 (and keeps it: no expiry on commit), then another
    # one changes the widget.
    assert (await service.get_widget(db, acme.tenant, widget_id)).revision == 1
    await db.commit()
    other = await client.patch(
        f"{WIDGETS}/{widget_id}", json={"name": "Theirs"}, headers=acme.matching('"1"')
    )
    assert other.status_code == 200

    # Its If-Match still matches what it read; the database refuses the write.
    with pytest.raises(PreconditionFailed):
        await service.edit_widget(db, access, widget_id, '"1"', name="Mine")
    await db.rollback()  # which expires every object: read the widget anew
    stored = await db.get_one(Widget, widget_id)
    assert (stored.name, stored.revision) == ("Theirs", 2)


async def test_a_change_that_changes_nothing_keeps_the_revision(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    widget = url(await create(client, acme))
    same = await client.patch(
        widget,
        json={"name": "Shop chat", "config": {"mode": "self_hosted"}},
        headers=acme.matching('"1"'),
    )
    assert (same.status_code, same.headers["ETag"]) == (200, '"1"')
    assert await audit_entries(db, acme.tenant, "widget.updated") == []


async def test_changes_are_audited_with_what_they_changed(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    widget = url(await create(client, acme))
    changed = await client.patch(
        widget,
        json={"name": "Help", "config": {"launcher": {"label": "Help"}}},
        headers=acme.matching('"1"'),
    )
    assert changed.status_code == 200
    [entry] = await audit_entries(db, acme.tenant, "widget.updated")
    assert entry.actor_id == str(acme.owner.id)
    assert entry.data == {
        "before": {"name": "Shop chat", "config.launcher": DEFAULTS["launcher"]},
        "after": {"name": "Help", "config.launcher": {**DEFAULTS["launcher"], "label": "Help"}},
    }


async def test_a_deleted_widget_is_gone_with_its_versions_and_origins(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    created = await create(client, acme, origins=["https://shop.example.com"])
    widget = url(created)
    assert (await client.post(url(created, "/publish"), headers=acme.matching('"1"'))).is_success

    assert (await client.delete(widget, headers=acme.headers)).status_code == 204
    gone = await client.get(widget, headers=acme.headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "widget_not_found")
    widget_id = uuid.UUID(created.json()["id"])
    assert await repository.list_origins(db, acme.tenant.id, widget_id) == []
    versions = await repository.list_versions(db, acme.tenant.id, widget_id, before=None, limit=9)
    assert versions == []
    [entry] = await audit_entries(db, acme.tenant, "widget.deleted")
    assert entry.data["before"]["name"] == "Shop chat"
    assert entry.data["after"] == {}


async def test_another_tenants_widget_is_not_found(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Acme
) -> None:
    other = await make_tenant(db, "other")
    theirs = await service.create_widget(
        db, CLI, other, name="Theirs", origins=["https://theirs.example"]
    )
    [origin] = await repository.list_origins(db, other.id, theirs.id)
    admin = await login(app, db, await make_member(db, acme.tenant, Role.admin))
    headers = {**admin.headers, "If-Match": '"1"'}
    widget = f"{WIDGETS}/{theirs.id}"
    for method, path, body in [
        ("GET", "", None),
        ("PATCH", "", {"name": "Mine"}),
        ("DELETE", "", None),
        ("PUT", "/config", {}),
        ("POST", "/publish", None),
        ("GET", "/versions", None),
        ("GET", "/versions/1", None),
        ("POST", "/versions/1/restore", None),
        ("GET", "/origins", None),
        ("POST", "/origins", {"origin": "https://mine.example"}),
        ("PATCH", f"/origins/{origin.id}", {"domain_key": "domain_pk_x"}),
        ("DELETE", f"/origins/{origin.id}", None),
    ]:
        response = await client.request(method, widget + path, json=body, headers=headers)
        assert (response.status_code, response.json()["code"]) == (404, "widget_not_found"), (
            method,
            path,
        )
    await db.refresh(theirs)
    assert (theirs.name, theirs.revision, theirs.published_version) == ("Theirs", 1, None)
    assert len(await repository.list_origins(db, other.id, theirs.id)) == 1


async def test_only_whether_an_identity_secret_is_set_is_shown(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    created = await create(client, acme)
    stored = await db.get_one(Widget, uuid.UUID(created.json()["id"]))
    stored.identity_secret = "ciphertext-of-the-secret"
    await db.flush()
    got = await client.get(url(created), headers=acme.headers)
    assert got.json()["has_identity_secret"] is True
    assert "ciphertext-of-the-secret" not in got.text


async def test_of_two_concurrent_publishers_one_wins(engine: AsyncEngine) -> None:
    """Two transactions at once, on their own connections: the second waits for the first's
    row lock, then finds the revision it read gone."""
    sessionmaker = concurrent_sessions(engine)
    async with sessionmaker() as setup:
        tenant = Tenant(slug=f"race-{uuid.uuid4().hex[:8]}", name="Race")
        setup.add(tenant)
        await setup.flush()
        widget = await service.create_widget(setup, CLI, tenant, name="Raced")
        await setup.commit()
    backend = ClientPrincipal(ApiClient(client_id="kc_race"), ALL_SCOPES)
    access = TenantAccess(tenant, backend, ALL_SCOPES, None)
    try:
        async with sessionmaker() as first, sessionmaker() as second:
            await service.publish(first, access, widget.id, '"1"')
            waiting = asyncio.create_task(service.publish(second, access, widget.id, '"1"'))
            await asyncio.sleep(0.3)
            assert not waiting.done(), "the second publisher waits for the first's row lock"
            await first.commit()
            with pytest.raises(PreconditionFailed):
                await waiting
        async with sessionmaker() as check:
            stored = await check.get_one(Widget, widget.id)
            versions = await repository.list_versions(
                check, tenant.id, widget.id, before=None, limit=9
            )
            assert (stored.published_version, [v.number for v in versions]) == (1, [1])
    finally:
        async with sessionmaker() as cleanup:
            await cleanup.execute(delete(Tenant).where(Tenant.id == tenant.id))
            await cleanup.commit()
