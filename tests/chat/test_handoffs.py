"""An agent's handoffs: the main agent hands the conversation to another agent (the model
calls ``transfer_to_<id>``), which answers with its own instructions and tools; the visitor
sees "Transferred to <name>" in the thread; later turns go on with the agent that answered
last, until it hands back (``transfer_to_main``)."""

from __future__ import annotations

from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Widget
from tests.chat.helpers import (
    Visitor,
    chat_config,
    deltas,
    make_chat_widget,
    model_requests,
    offered,
    publish_unchecked,
    thread_of,
    transfers,
    visitor,
)
from tests.conftest import config_cache
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI

TRIAGE = "You route Acme's customers."
BILLING = "You answer billing questions."
WEB = {"type": "web_search", "id": "web", "allowed_domains": ["billing.acme.example"]}


def team(**billing: Any) -> dict[str, Any]:
    return {
        "name": "Triage",
        "instructions": TRIAGE,
        "tools": [WEB],
        "main_tools": [],
        "handoffs": [
            {
                "id": "billing",
                "name": "Billing",
                "description": "Invoices and refunds.",
                "instructions": BILLING,
                "model": "gpt-4.1",
                "temperature": 0.2,
                "tools": ["web"],
                **billing,
            }
        ],
    }


async def team_widget(
    http: httpx2.AsyncClient, db: AsyncSession, app: FastAPI, fake: FakeOpenAI, **agent: Any
) -> tuple[Widget, Visitor]:
    widget = await make_chat_widget(db, app, fake)
    await publish_unchecked(db, widget, chat_config(fake, agent={**team(), **agent}))
    return widget, await visitor(http, app, db, widget)


async def test_the_main_agent_hands_over_and_the_other_agent_answers(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    _, alice = await team_widget(http, db, app, fake_openai)
    fake_openai.hand_off("billing")

    events = await alice.send("Why was I charged twice?")

    first, second = model_requests(fake_openai)
    assert first["instructions"].startswith(TRIAGE)
    assert offered(first) == ["transfer_to_billing"]
    assert second["instructions"].startswith(BILLING)
    assert (second["model"], second["temperature"]) == ("gpt-4.1", 0.2)
    assert offered(second) == ["web_search", "transfer_to_main"]
    assert fake_openai.web_searches[0]["filters"] == {"allowed_domains": ["billing.acme.example"]}
    assert transfers(events) == ["Transferred to Billing"]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
    items = await alice.call("items.list", thread_id=thread_of(events), order="asc")
    assert [i["type"] for i in items["data"]] == ["user_message", "task", "assistant_message"]
    assert items["data"][1]["task"]["title"] == "Transferred to Billing"


async def test_the_reasoning_effort_reaches_the_model_of_each_agent_that_has_one(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """The main agent's effort is its own: a handoff agent (maybe on a model that refuses
    the parameter) sends one only when it has its own."""
    _, alice = await team_widget(http, db, app, fake_openai, model="gpt-5", reasoning_effort="low")
    fake_openai.hand_off("billing")

    await alice.send("Why was I charged twice?")

    first, second = model_requests(fake_openai)
    assert first["reasoning"] == {"effort": "low"}
    assert "reasoning" not in second


async def test_a_later_turn_goes_on_with_the_agent_that_answered_until_it_hands_back(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    _, alice = await team_widget(http, db, app, fake_openai)
    fake_openai.hand_off("billing")
    thread = thread_of(await alice.send("Why was I charged twice?"))
    fake_openai.requests.clear()

    await alice.send("And the invoice?", thread)

    [body] = model_requests(fake_openai)
    assert body["instructions"].startswith(BILLING)
    fake_openai.requests.clear()
    fake_openai.hand_off("main")

    events = await alice.send("Where is my parcel?", thread)

    billing, triage = model_requests(fake_openai)
    assert billing["instructions"].startswith(BILLING)
    assert triage["instructions"].startswith(TRIAGE)
    assert transfers(events) == ["Transferred to Triage"]
    fake_openai.requests.clear()

    await alice.send("Thanks!", thread)

    [body] = model_requests(fake_openai)
    assert body["instructions"].startswith(TRIAGE)


async def test_an_agent_without_hand_back_keeps_the_conversation(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    agent = team(hand_back=False, tools=[])
    _, alice = await team_widget(http, db, app, fake_openai, **agent)
    fake_openai.hand_off("billing")

    await alice.send("Why was I charged twice?")

    _, billing = model_requests(fake_openai)
    assert offered(billing) == []


async def test_an_agent_the_config_no_longer_has_gives_the_turn_to_the_main_agent(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    app.state.add(config_cache(app, revalidate_after=0))  # sees the new version
    widget, alice = await team_widget(http, db, app, fake_openai)
    fake_openai.hand_off("billing")
    thread = thread_of(await alice.send("Why was I charged twice?"))
    await publish_unchecked(db, widget, chat_config(fake_openai, agent={"instructions": TRIAGE}))
    fake_openai.requests.clear()

    await alice.send("And the invoice?", thread)

    [body] = model_requests(fake_openai)
    assert body["instructions"].startswith(TRIAGE)
    assert offered(body) == []


async def test_handoffs_work_with_chat_completions(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    agent = {**team(), "model_api": "chat_completions", "tools": [], "main_tools": None}
    agent["handoffs"] = [{**agent["handoffs"][0], "tools": []}]
    _, alice = await team_widget(http, db, app, fake_openai, **agent)
    fake_openai.hand_off("billing")

    events = await alice.send("Why was I charged twice?")

    first, second = model_requests(fake_openai)
    assert first["messages"][0]["content"].startswith(TRIAGE)
    assert second["messages"][0]["content"].startswith(BILLING)
    assert [t["function"]["name"] for t in second["tools"]] == ["transfer_to_main"]
    assert transfers(events) == ["Transferred to Billing"]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
