"""Tripped guardrails are a metric: the ``server.guardrail.tripped`` facts a chat reports,
stored as the ingest task stores them and rolled up as beat does, are counted in
``guardrails_tripped``, readable through the analytics API (series and the CSV export)."""

from __future__ import annotations

import csv
import io

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.ingestion import service as ingestion
from kithost.analytics.rollups import service as rollups
from kithost.auth.scopes import Scope
from kithost.db import session_scope
from kithost.models import Tenant
from kithost.models.base import utcnow
from tests.chat.helpers import SentTasks, chat_config, make_chat_widget, publish_unchecked, visitor
from tests.factories import client_token
from tests.fakes.openai_server import FakeOpenAI


async def test_tripped_guardrails_are_counted_and_reported(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    sent_tasks: SentTasks,
) -> None:
    widget = await make_chat_widget(db, app, fake_openai)
    guardrails = {"refused_topics": ["crypto"], "max_input_length": 40}
    await publish_unchecked(db, widget, chat_config(fake_openai, agent={"guardrails": guardrails}))
    alice = await visitor(http, app, db, widget)
    for message in ("Crypto?", "Tell me about crypto", "x" * 41, "Is the tent waterproof?"):
        await alice.send(message)
    facts = await sent_tasks.facts()
    assert [f["name"] for f in facts].count("server.guardrail.tripped") == 3
    async with session_scope(app.state.sessionmaker, tenant=widget.tenant_id) as session:
        await ingestion.store(session, widget.tenant_id, widget.id, facts, utcnow())
    await rollups.rollup_pending(app.state.sessionmaker)
    tenant = await db.get(Tenant, widget.tenant_id)
    assert tenant is not None
    creds = await client_token(app, db, tenant, [Scope.analytics_read])
    url = f"/api/v1/tenants/{tenant.slug}/analytics"

    series = await http.get(
        f"{url}/series", params={"metric": "guardrails_tripped"}, headers=creds.headers
    )
    assert series.status_code == 200, series.text
    assert sum(p["value"] or 0 for p in series.json()["points"]) == 3
    messages = await http.get(f"{url}/series", params={"metric": "messages"}, headers=creds.headers)
    assert sum(p["value"] or 0 for p in messages.json()["points"]) == 4
    export = await http.get(f"{url}/export/series.csv", headers=creds.headers)
    assert export.status_code == 200, export.text
    assert sum(int(r["guardrails_tripped"]) for r in csv.DictReader(io.StringIO(export.text))) == 3
