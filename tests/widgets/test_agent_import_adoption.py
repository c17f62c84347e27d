"""An imported export's vector stores become knowledge bases only when they are the
tenant's: its own OpenAI key retrieves each at the operator's endpoint (the fake server
keeps each store in the project of the key that made it), and no other tenant's base holds
it. A store adopted once is searched through the same base when imported again; an adopted
base takes no uploads, and deleting it leaves the store at OpenAI."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.scopes import Scope
from kithost.models import KnowledgeBase
from kithost.settings import Settings
from tests.factories import client_token, make_tenant
from tests.fakes.openai_server import FakeOpenAI
from tests.knowledge.helpers import BASES, GUIDE, app, run_remove, tasks
from tests.widgets.helpers import WIDGETS, Acme, create, url
from tests.workers import RecordedTasks

__all__ = ["app", "tasks"]

OWN_KEY = "sk-acme-own-project-key"


def exported(*stores: str, member_stores: tuple[str, ...] = ()) -> str:
    """An export whose agent searches ``stores`` and hands off to one searching
    ``member_stores``."""
    return f"""
from agents import Agent, FileSearchTool, Runner

search = FileSearchTool(vector_store_ids={list(stores)!r})
other = FileSearchTool(vector_store_ids={list(member_stores)!r})
orders = Agent(name="Orders", instructions="You find orders.", tools=[other])
agent = Agent(name="Helper", instructions="Help.", tools=[search], handoffs=[orders])


async def run_workflow(workflow_input):
    return await Runner.run(agent, input=[])
"""


async def set_own_key(client: httpx2.AsyncClient, acme: Acme, fake: FakeOpenAI) -> None:
    fake.project_keys.add(OWN_KEY)
    put = await client.put(
        "/api/v1/tenants/acme/openai-key", json={"api_key": OWN_KEY}, headers=acme.headers
    )
    assert put.is_success, put.text


async def imported(client: httpx2.AsyncClient, acme: Acme, code: str) -> dict[str, Any]:
    widget = await create(client, acme)
    response = await client.post(
        url(widget, "/agent-import"), json={"code": code}, headers=acme.matching('"1"')
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def bases_of(db: AsyncSession, tenant_id: uuid.UUID) -> list[KnowledgeBase]:
    found = await db.scalars(
        select(KnowledgeBase)
        .where(KnowledgeBase.tenant_id == tenant_id)
        .order_by(KnowledgeBase.created_at)
    )
    return list(found)


def not_carried(answer: dict[str, Any]) -> dict[str, str]:
    return {s["what"]: s["instead"] for s in answer["not_carried"]}


async def test_a_store_of_the_tenants_own_project_is_adopted_once_and_stays_at_openai(
    client: httpx2.AsyncClient,
    acme: Acme,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    app: FastAPI,
    tasks: RecordedTasks,
) -> None:
    await set_own_key(client, acme, fake_openai)
    store = fake_openai.vector_stores.add(OWN_KEY)

    first = await imported(client, acme, exported(store))
    again = await imported(client, acme, exported(store))

    [base] = await bases_of(db, acme.tenant.id)
    assert (base.vector_store_id, base.adopted) == (store, True)
    for answer in (first, again):
        [search] = answer["config"]["agent"]["tools"]
        assert (search["id"], search["knowledge_bases"]) == ("knowledge", [str(base.id)])
        assert answer["not_carried"] == []
    uploaded = await client.post(
        f"{BASES}/{base.id}/documents", files={"file": GUIDE}, headers=acme.headers
    )
    assert uploaded.status_code == 409, uploaded.text
    assert uploaded.json()["code"] == "knowledge_base_adopted"

    in_use = await client.delete(f"{BASES}/{base.id}", headers=acme.headers)
    assert in_use.status_code == 409, in_use.text
    assert in_use.json()["code"] == "knowledge_base_in_use"
    for widget in (await client.get(WIDGETS, headers=acme.headers)).json():
        assert (await client.delete(url(widget), headers=acme.headers)).status_code == 204
    deleted = await client.delete(f"{BASES}/{base.id}", headers=acme.headers)
    assert deleted.status_code == 204, deleted.text
    await run_remove(app, tasks)
    assert store in fake_openai.vector_stores.stores


async def test_a_store_only_the_platform_key_reaches_is_not_adopted(
    client: httpx2.AsyncClient,
    acme: Acme,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    app: FastAPI,
    settings: Settings,
) -> None:
    app.state.settings = settings.model_copy(
        update={"openai_base_url": fake_openai.base_url, "openai_api_key": fake_openai.api_key}
    )
    store = fake_openai.vector_stores.add(fake_openai.api_key)

    answer = await imported(client, acme, exported(store))

    assert answer["config"]["agent"]["tools"] == []
    assert "own OpenAI API key" in not_carried(answer)[f"vector store {store}"]
    assert await bases_of(db, acme.tenant.id) == []


async def test_another_tenants_store_is_never_adopted(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    await set_own_key(client, acme, fake_openai)
    theirs = fake_openai.vector_stores.add(fake_openai.api_key)  # another project's
    shared = fake_openai.vector_stores.add(OWN_KEY)  # the same project, another tenant's base
    victim = await make_tenant(db, "victim")
    db.add(KnowledgeBase(tenant_id=victim.id, name="Victim's", vector_store_id=shared))
    await db.flush()

    answer = await imported(client, acme, exported(theirs, shared))

    assert answer["config"]["agent"]["tools"] == []
    refused = not_carried(answer)
    assert "does not reach" in refused[f"vector store {theirs}"]
    assert "Another tenant's" in refused[f"vector store {shared}"]
    assert await bases_of(db, acme.tenant.id) == []
    assert {theirs, shared} <= fake_openai.vector_stores.stores.keys()


async def test_each_store_has_a_base_and_agents_searching_others_are_listed(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    await set_own_key(client, acme, fake_openai)
    mine, orders = fake_openai.vector_stores.add(OWN_KEY), fake_openai.vector_stores.add(OWN_KEY)
    code = exported(mine, member_stores=(orders,))

    answer = await imported(client, acme, code)

    first, second = await bases_of(db, acme.tenant.id)
    assert {first.vector_store_id, second.vector_store_id} == {mine, orders}
    agent = answer["config"]["agent"]
    [search] = agent["tools"]
    assert sorted(search["knowledge_bases"]) == sorted([str(first.id), str(second.id)])
    assert (agent["main_tools"], agent["handoffs"][0]["tools"]) == (["knowledge"], ["knowledge"])
    [listed] = answer["not_carried"]
    assert listed["what"] == "file searches on different vector stores"
    assert code.splitlines()[listed["line"] - 1].startswith("other = FileSearchTool")


async def test_a_store_is_adopted_only_by_who_may_make_knowledge_bases(
    client: httpx2.AsyncClient,
    acme: Acme,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    app: FastAPI,
) -> None:
    await set_own_key(client, acme, fake_openai)
    store = fake_openai.vector_stores.add(OWN_KEY)
    widgets_only = await client_token(
        app, db, acme.tenant, [Scope.widgets_read, Scope.widgets_write]
    )
    widget = await create(client, acme)

    response = await client.post(
        url(widget, "/agent-import"),
        json={"code": exported(store)},
        headers={**widgets_only.headers, "If-Match": '"1"'},
    )

    assert response.status_code == 200, response.text
    assert response.json()["config"]["agent"]["tools"] == []
    assert "knowledge:write" in not_carried(response.json())[f"vector store {store}"]
    assert await bases_of(db, acme.tenant.id) == []
    adopted = await imported(client, acme, exported(store))  # the owner may
    [base] = await bases_of(db, acme.tenant.id)
    again = await client.post(
        url(widget, "/agent-import"),
        json={"code": exported(store)},
        params={"dry_run": "true"},
        headers=widgets_only.headers,
    )  # a base the tenant has already is the widget's to search
    [search] = again.json()["config"]["agent"]["tools"]
    assert (
        search["knowledge_bases"]
        == [str(base.id)]
        == adopted["config"]["agent"]["tools"][0]["knowledge_bases"]
    )
