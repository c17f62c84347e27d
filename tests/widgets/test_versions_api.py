"""Publishing over REST: numbered immutable versions, what visitors see, restoring."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.scopes import Scope
from kithost.models import KnowledgeBase, Widget
from tests.factories import client_token
from tests.widgets.helpers import Acme, audit_entries, create, url


async def test_publishing_freezes_the_draft_as_numbered_versions(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    created = await create(client, acme, config={"launcher": {"label": "One"}})
    widget = url(created)
    one = created.json()["config"]

    missing = await client.post(widget + "/publish", headers=acme.headers)
    assert (missing.status_code, missing.json()["code"]) == (428, "precondition_required")
    first = await client.post(widget + "/publish", headers=acme.matching('"1"'))
    assert first.status_code == 200, first.text
    assert (first.json()["published_version"], first.headers["ETag"]) == (1, '"2"')

    two = (
        await client.patch(
            widget, json={"config": {"launcher": {"label": "Two"}}}, headers=acme.matching('"2"')
        )
    ).json()
    assert two["published_version"] == 1, "an edit changes the draft only"
    second = await client.post(
        widget + "/publish", json={"note": "Label two"}, headers=acme.matching('"3"')
    )
    assert (second.json()["published_version"], second.headers["ETag"]) == (2, '"4"')
    edited = await client.patch(
        widget, json={"config": {"launcher": {"label": "Three"}}}, headers=acme.matching('"4"')
    )
    assert edited.json()["published_version"] == 2

    listed = await client.get(widget + "/versions", headers=acme.headers)
    owner = str(acme.owner.id)
    assert [(v["number"], v["published_by"], v["note"]) for v in listed.json()] == [
        (2, owner, "Label two"),
        (1, owner, ""),
    ]
    assert set(listed.json()[0]) == {"number", "created_at", "published_by", "note"}
    for number, config in [(1, one), (2, two["config"])]:
        version = await client.get(f"{widget}/versions/{number}", headers=acme.headers)
        assert version.json()["config"] == config
        assert version.json()["number"] == number
    missing_version = await client.get(widget + "/versions/3", headers=acme.headers)
    assert (missing_version.status_code, missing_version.json()["code"]) == (
        404,
        "version_not_found",
    )

    entries = await audit_entries(db, acme.tenant, "widget.published")
    assert [e.data for e in entries] == [
        {"before": {"published_version": None}, "after": {"published_version": 1}},
        {
            "before": {"published_version": 1},
            "after": {"published_version": 2},
            "note": "Label two",
        },
    ]


async def test_versions_are_listed_newest_first_a_page_at_a_time(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = url(await create(client, acme))
    for revision in (1, 2, 3):
        response = await client.post(widget + "/publish", headers=acme.matching(f'"{revision}"'))
        assert response.status_code == 200
    page = await client.get(widget + "/versions", params={"limit": 2}, headers=acme.headers)
    assert [v["number"] for v in page.json()] == [3, 2]
    rest = await client.get(widget + "/versions", params={"before": 2}, headers=acme.headers)
    assert [v["number"] for v in rest.json()] == [1]


async def test_a_version_published_by_an_api_client_names_no_user(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Acme
) -> None:
    widget = url(await create(client, acme))
    backend = await client_token(app, db, acme.tenant, [Scope.widgets_write, Scope.widgets_read])
    headers = {**backend.headers, "If-Match": '"1"'}
    assert (await client.post(widget + "/publish", headers=headers)).status_code == 200
    listed = await client.get(widget + "/versions", headers=backend.headers)
    assert [(v["number"], v["published_by"]) for v in listed.json()] == [(1, None)]


async def test_publishing_checks_the_draft_again(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    created = await create(client, acme)
    stored = await db.get_one(Widget, uuid.UUID(created.json()["id"]))
    stored.draft = {"chatkit": {"theme": {"radius": "round-ish"}}}
    await db.flush()
    refused = await client.post(url(created, "/publish"), headers=acme.matching('"2"'))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "config.chatkit.theme.radius"
    listed = await client.get(url(created, "/versions"), headers=acme.headers)
    assert listed.json() == []


async def test_restoring_copies_a_version_into_the_draft_without_publishing(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    created = await create(client, acme, config={"launcher": {"label": "One"}})
    widget = url(created)
    await client.post(widget + "/publish", headers=acme.matching('"1"'))
    await client.patch(
        widget, json={"config": {"launcher": {"label": "Two"}}}, headers=acme.matching('"2"')
    )
    await client.post(widget + "/publish", headers=acme.matching('"3"'))

    missing = await client.post(widget + "/versions/1/restore", headers=acme.headers)
    assert missing.status_code == 428
    restored = await client.post(widget + "/versions/1/restore", headers=acme.matching('"4"'))
    assert restored.status_code == 200, restored.text
    assert restored.json()["config"] == created.json()["config"]
    assert (restored.json()["published_version"], restored.headers["ETag"]) == (2, '"5"')
    version = await client.get(widget + "/versions/2", headers=acme.headers)
    assert version.json()["config"]["launcher"]["label"] == "Two"

    [entry] = await audit_entries(db, acme.tenant, "widget.version_restored")
    assert entry.data == {
        "version": 1,
        "before": {"config.launcher": {**created.json()["config"]["launcher"], "label": "Two"}},
        "after": {"config.launcher": created.json()["config"]["launcher"]},
    }
    unknown = await client.post(widget + "/versions/7/restore", headers=acme.matching('"5"'))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "version_not_found")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/versions/3000000000", {}, "number"),
        ("/versions/99999999999999999999", {}, "number"),
        ("/versions/0", {}, "number"),
        ("/versions", {"before": 3000000000}, "before"),
    ],
)
async def test_a_version_number_beyond_any_version_is_refused_with_the_field(
    client: httpx2.AsyncClient, acme: Acme, path: str, params: dict[str, int], field: str
) -> None:
    widget = url(await create(client, acme))
    for method, headers in [("GET", acme.headers), ("POST", acme.matching('"1"'))]:
        if method == "POST" and params:
            continue
        target = widget + path + ("/restore" if method == "POST" else "")
        response = await client.request(method, target, params=params, headers=headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_restoring_checks_the_version_as_a_draft_is_checked(
    client: httpx2.AsyncClient, db: AsyncSession, acme: Acme
) -> None:
    base = KnowledgeBase(tenant_id=acme.tenant.id, name="Help centre")
    db.add(base)
    await db.flush()
    search = {"type": "file_search", "id": "help", "knowledge_bases": [str(base.id)]}
    created = await create(client, acme, config={"agent": {"tools": [search]}})
    widget = url(created)
    assert (await client.post(widget + "/publish", headers=acme.matching('"1"'))).status_code == 200
    emptied = await client.put(widget + "/config", json={}, headers=acme.matching('"2"'))
    assert emptied.status_code == 200
    await db.delete(base)
    await db.flush()

    refused = await client.post(widget + "/versions/1/restore", headers=acme.matching('"3"'))
    assert refused.status_code == 422, refused.text
    assert [(e["field"], e["type"]) for e in refused.json()["errors"]] == [
        ("config.agent.tools.0.knowledge_bases", "knowledge_base_not_found")
    ]
    draft = await client.get(widget, headers=acme.headers)
    assert (draft.headers["ETag"], draft.json()["config"]["agent"]["tools"]) == ('"3"', [])


STORED_PAST_TODAYS_CHECKS = [
    (
        {
            "tools": [
                {
                    "type": "http",
                    "id": "orders",
                    "name": "lookup_order",
                    "description": "The status of an order.",
                    "url": "https://10.0.0.7/order",
                }
            ]
        },
        "config.agent.tools.0.url",
        "outbound_refused",
    ),
    (
        {
            "tools": [
                {
                    "type": "mcp",
                    "id": "orders",
                    "url": "https://169.254.169.254/mcp",
                    "allowed_tools": ["order_status"],
                }
            ]
        },
        "config.agent.tools.0.url",
        "outbound_refused",
    ),
    ({"base_url": "https://10.0.0.7/v1"}, "config.agent.base_url", "outbound_refused"),
    (
        {
            "handoffs": [
                {"id": "billing", "name": "Billing", "instructions": "Bills.", "tools": ["x"]}
            ]
        },
        "config.agent.handoffs.0.tools.0",
        "tool_not_found",
    ),
    (
        {"tools": [{"type": "file_search", "id": "help", "knowledge_bases": [str(uuid.uuid4())]}]},
        "config.agent.tools.0.knowledge_bases",
        "knowledge_base_not_found",
    ),
]


@pytest.mark.parametrize(("agent", "field", "rule"), STORED_PAST_TODAYS_CHECKS)
async def test_publishing_checks_the_draft_as_saving_does(
    client: httpx2.AsyncClient,
    db: AsyncSession,
    acme: Acme,
    agent: dict[str, Any],
    field: str,
    rule: str,
) -> None:
    """A draft saved before its address was refused (the outbound policy changed), a
    knowledge base deleted or a rule added is refused when published, on the field."""
    created = await create(client, acme)
    stored = await db.get_one(Widget, uuid.UUID(created.json()["id"]))
    stored.draft = {**stored.draft, "agent": {**stored.draft["agent"], **agent}}
    await db.flush()
    refused = await client.post(url(created, "/publish"), headers=acme.matching('"2"'))
    assert refused.status_code == 422, refused.text
    assert [(e["field"], e["type"]) for e in refused.json()["errors"]] == [(field, rule)]
    listed = await client.get(url(created, "/versions"), headers=acme.headers)
    assert listed.json() == []
