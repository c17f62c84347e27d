"""An Agent Builder export imported through the API (``tests/widgets/exports/``) and then
chatted with through Kithost, the fake model answering: the agent behaves as the export
describes — the triage agent hands off (the next request carries the other agent's
instructions), each agent is offered its own tools, and the guardrails trip before the
model is called."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
from chatkit.types import AssistantMessageItem, ThreadItemDoneEvent
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Role, Widget
from kithost.widgets.config import WidgetConfig
from tests.chat.helpers import (
    SentTasks,
    Visitor,
    deltas,
    model_requests,
    offered,
    publish_unchecked,
    thread_of,
    transfers,
    visitor,
)
from tests.conftest import state_of
from tests.factories import login, make_member, make_tenant
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI
from tests.visitor.helpers import ORIGIN
from tests.widgets.helpers import export

STORE = "vs_6911f0c2a4d88191b1e0c5a3d2f7e901"
REFUSAL = "Sorry, I can't help with that here."


async def imported_widget(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake: FakeOpenAI, name: str
) -> tuple[dict[str, Any], Visitor]:
    """A widget whose draft the export's import made, published answering with the fake
    model; the import's answer and a visitor."""
    tenant = await make_tenant(db)
    owner = await make_member(db, tenant, Role.owner)
    headers = (await login(app, db, owner)).headers
    widgets = f"/api/v1/tenants/{tenant.slug}/widgets"
    created = await http.post(
        widgets, json={"name": "Support", "origins": [ORIGIN]}, headers=headers
    )
    assert created.status_code == 201, created.text
    key = app.state.secret_box.encrypt(fake.api_key)
    tenant.openai_api_key = key  # its store is adopted: the tenant's own key reaches it
    fake.vector_stores.add(fake.api_key, STORE)
    await db.flush()
    state = state_of(app)
    settings = state.settings
    state.settings = settings.model_copy(update={"openai_base_url": fake.base_url})
    try:
        imported = await http.post(
            f"{widgets}/{created.json()['id']}/agent-import",
            json={"code": export(name)},
            headers={**headers, "If-Match": '"1"'},
        )
    finally:
        state.settings = settings
    assert imported.status_code == 200, imported.text
    answer: dict[str, Any] = imported.json()
    widget = await db.get(Widget, uuid.UUID(created.json()["id"]))
    assert widget is not None
    widget.model_key = key
    widget.model_key_base_url = fake.base_url
    config = answer["config"]
    agent = {**config["agent"], "base_url": fake.base_url}
    await publish_unchecked(db, widget, WidgetConfig.model_validate({**config, "agent": agent}))
    return answer, await visitor(http, app, db, widget)


async def test_the_support_team_export_carries_its_handoffs_tools_and_guardrails(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    answer, _ = await imported_widget(http, app, db, fake_openai, "support_team")

    agent = answer["config"]["agent"]
    assert (agent["name"], agent["temperature"], agent["main_tools"]) == ("Triage", 0.5, [])
    assert [t["id"] for t in agent["tools"]] == ["knowledge", "web"]
    billing, orders = agent["handoffs"]
    assert billing == {
        "id": "billing",
        "name": "Billing",
        "description": "Invoices, charges and refunds.",
        "instructions": "You answer billing questions for Acme.\n"
        "Look up the billing policy on the web when unsure.",
        "model": "gpt-4.1",
        "temperature": 0.2,
        "max_output_tokens": 600,
        "reasoning_effort": None,
        "tools": ["web"],
        "hand_back": True,
    }
    assert (orders["id"], orders["name"], orders["tools"]) == (
        "order_status",
        "Order Status",
        ["knowledge"],
    )
    assert orders["description"] == "Where an order is, and when it arrives."
    assert agent["guardrails"] == {
        "max_input_length": None,
        "refused_topics": ["crypto", "lottery"],
        "moderation": True,
        "refusal_message": REFUSAL,
    }
    lines = export("support_team").splitlines()
    not_carried = {s["what"]: lines[s["line"] - 1].strip() for s in answer["not_carried"]}
    assert not_carried == {
        "Moderation categories": lines[24].strip(),
        "guardrail Contains PII": lines[26].strip(),
        "guardrail Jailbreak": lines[27].strip(),
        "what run_workflow does when a guardrail trips": "if guardrails_hastripwire:",
    }
    assert '"Contains PII"' in not_carried["guardrail Contains PII"]


@pytest.mark.parametrize(
    ("agent_id", "name", "instructions", "tool"),
    [
        ("billing", "Billing", "You answer billing questions", "web_search"),
        ("order_status", "Order Status", "You tell", "file_search"),
    ],
)
async def test_the_triage_agent_hands_off_to_an_agent_with_its_own_tool(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    agent_id: str,
    name: str,
    instructions: str,
    tool: str,
) -> None:
    _, alice = await imported_widget(http, app, db, fake_openai, "support_team")
    fake_openai.hand_off(agent_id)

    events = await alice.send("Hello, I need help with my order and its invoice.")

    triage, member = model_requests(fake_openai)
    assert triage["instructions"].startswith("You greet Acme's customers")
    assert offered(triage) == ["transfer_to_billing", "transfer_to_order_status"]
    assert member["instructions"].startswith(instructions)
    assert offered(member) == [tool, "transfer_to_main"]
    if tool == "file_search":
        assert member["tools"][0]["vector_store_ids"] == [STORE]
    assert transfers(events) == [
        f"Transferred to {'Billing' if agent_id == 'billing' else 'Order Status'}"
    ]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


@pytest.mark.parametrize(
    ("message", "tripped"),
    [("Can I pay in Crypto?", "refused_topic"), ("You are FLAGGED.", "moderation")],
)
async def test_the_exports_guardrails_trip_before_the_model(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
    message: str,
    tripped: str,
) -> None:
    _, alice = await imported_widget(http, app, db, fake_openai, "support_team")

    events = await alice.send(message)

    assert model_requests(fake_openai) == []
    [answer] = [
        e.item
        for e in events
        if isinstance(e, ThreadItemDoneEvent) and isinstance(e.item, AssistantMessageItem)
    ]
    assert [c.text for c in answer.content] == [REFUSAL]
    facts = [f for f in await sent_tasks.facts() if f["name"] == "server.guardrail.tripped"]
    assert [f["data"] for f in facts] == [{"thread_id": thread_of(events), "guardrail": tripped}]


async def test_the_single_agent_export_answers_as_exported(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    _, alice = await imported_widget(http, app, db, fake_openai, "single_agent")

    events = await alice.send("Where is my order?")

    [body] = model_requests(fake_openai)
    assert body["instructions"].startswith("You help Acme's customers with their orders.")
    assert (body["model"], body["temperature"], body["max_output_tokens"]) == (
        "gpt-4.1-mini",
        0.3,
        800,
    )
    assert offered(body) == []
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
