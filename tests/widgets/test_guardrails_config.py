"""An agent's guardrails in a widget's configuration: kept with their defaults; OpenAI's
moderation refused for an agent with its own ``base_url`` (no OpenAI key goes there)."""

from __future__ import annotations

import uuid

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Widget
from tests.widgets.helpers import Acme, create, url


async def test_guardrails_are_kept_with_their_defaults(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = await create(client, acme)
    guardrails = {"max_input_length": 500, "refused_topics": ["Politics"], "moderation": True}
    put = await client.put(
        url(widget, "/config"),
        json={"agent": {"guardrails": guardrails}},
        headers=acme.matching('"1"'),
    )
    assert put.status_code == 200, put.text
    assert put.json()["config"]["agent"]["guardrails"] == {
        **guardrails,
        "refusal_message": "Sorry, I can't help with that here.",
    }


async def test_moderation_needs_an_agent_on_openai(
    client: httpx2.AsyncClient, app: FastAPI, acme: Acme, db: AsyncSession
) -> None:
    widget = await create(client, acme)
    stored = await db.get(Widget, uuid.UUID(widget.json()["id"]))
    assert stored is not None
    stored.model_key = app.state.secret_box.encrypt("model-key")
    await db.flush()
    agent = {"base_url": "https://models.acme.example/v1", "guardrails": {"moderation": True}}
    put = await client.put(
        url(widget, "/config"), json={"agent": agent}, headers=acme.matching(f'"{stored.revision}"')
    )
    assert put.status_code == 422, put.text
    assert [(e["field"], e["type"]) for e in put.json()["errors"]] == [
        ("config.agent.guardrails.moderation", "moderation_needs_openai")
    ]
