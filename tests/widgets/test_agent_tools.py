"""An agent's tools in a widget's configuration: kept as given, refused with the field at
fault when they cannot work (a knowledge base that is not the tenant's, file_search on
Chat Completions, two tools with one id)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import KnowledgeBase, Tenant
from tests.factories import make_tenant
from tests.widgets.helpers import Acme, create, url


async def knowledge_base(db: AsyncSession, tenant: Tenant) -> str:
    base = KnowledgeBase(tenant_id=tenant.id, name="Help centre")
    db.add(base)
    await db.flush()
    return str(base.id)


def search(base: str, **tool: Any) -> dict[str, Any]:
    return {"type": "file_search", "id": "help", "knowledge_bases": [base], **tool}


async def test_a_file_search_tool_is_kept_with_its_defaults(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    base = await knowledge_base(db, acme.tenant)
    widget = await create(client, acme)
    tool = search(base, label="Searching the help centre…")
    web = {"type": "web_search", "id": "web", "allowed_domains": ["acme.example"]}
    put = await client.put(
        url(widget, "/config"),
        json={"agent": {"tools": [tool, web]}},
        headers=acme.matching('"1"'),
    )
    assert put.status_code == 200, put.text
    assert put.json()["config"]["agent"]["tools"] == [
        {**tool, "max_results": 5},
        {**web, "label": "Searching the web…"},
    ]


@pytest.mark.parametrize(
    ("agent", "field", "type"),
    [
        ({"model_api": "chat_completions"}, "config.agent.tools.0.type", "tool_needs_responses"),
        (
            {"tools": "other tenant"},
            "config.agent.tools.0.knowledge_bases",
            "knowledge_base_not_found",
        ),
        ({"tools": "unknown"}, "config.agent.tools.0.knowledge_bases", "knowledge_base_not_found"),
        ({"tools": "same id"}, "config.agent.tools.1.id", "value"),
        ({"tools": "two searches"}, "config.agent.tools.1.type", "value"),
        ({"tools": "no bases"}, "config.agent.tools.0.knowledge_bases", "too_short"),
        ({"tools": "bad id"}, "config.agent.tools.0.id", "string_pattern_mismatch"),
        (
            {"tools": "bad domain"},
            "config.agent.tools.0.allowed_domains.0",
            "string_pattern_mismatch",
        ),
        ({"tools": "web on completions"}, "config.agent.tools.0.type", "tool_needs_responses"),
    ],
)
async def test_tools_that_cannot_work_are_refused_with_the_field(
    client: httpx2.AsyncClient,
    acme: Acme,
    db: AsyncSession,
    agent: dict[str, Any],
    field: str,
    type: str,
) -> None:
    base = await knowledge_base(db, acme.tenant)
    theirs = await knowledge_base(db, await make_tenant(db, "other"))
    tools = {
        "other tenant": [search(theirs)],
        "unknown": [search(str(uuid.uuid4()))],
        "same id": [search(base), {**search(base), "max_results": 2}],
        "two searches": [search(base), search(base, id="more")],
        "no bases": [{**search(base), "knowledge_bases": []}],
        "bad id": [search(base, id="Help Centre")],
        "bad domain": [{"type": "web_search", "id": "web", "allowed_domains": ["https://x.com"]}],
        "web on completions": [{"type": "web_search", "id": "web"}],
    }
    config = {"agent": {"tools": [search(base)], **agent}}
    if isinstance(agent.get("tools"), str):
        config["agent"]["tools"] = tools[agent["tools"]]
    if agent.get("tools") == "web on completions":
        config["agent"]["model_api"] = "chat_completions"
    widget = await create(client, acme)
    put = await client.put(url(widget, "/config"), json=config, headers=acme.matching('"1"'))
    assert put.status_code == 422, put.text
    assert put.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["type"]) for e in put.json()["errors"]] == [(field, type)]
    kept = await client.get(url(widget), headers=acme.headers)
    assert kept.json()["config"]["agent"]["tools"] == []
