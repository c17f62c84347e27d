"""A deleted conversation leaves nothing of itself in the delivery log: its
``conversation.idle`` transcripts (sent, with the receiver's answer, or still pending) go
with it, whoever deletes it, and a pending one is never sent; other conversations' and
other tenants' deliveries stay."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.conversations.idle import announce_idle
from kithost.models import Role, Tenant, WebhookDelivery, Widget
from kithost.models.base import utcnow
from kithost.webhooks.tasks import deliver
from tests.chat.helpers import thread_of, visitor
from tests.factories import Credentials, login, make_member
from tests.fakes.openai_server import FakeOpenAI
from tests.webhooks.helpers import Receiver, chat_tenant_with_hook, receiver, run_deliveries, sent

__all__ = ["receiver", "sent"]  # the fixtures

SECRET = "My card is 4111 1111 1111 1111"
KEPT = "Where is my order?"
THEIRS = "Another tenant's question"


async def owner_of(app: FastAPI, db: AsyncSession, widget: Widget) -> tuple[str, Credentials]:
    """The widget's tenant's API prefix, and an owner of it."""
    tenant = await db.get(Tenant, widget.tenant_id)
    assert tenant is not None
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    return f"/api/v1/tenants/{tenant.slug}", owner


async def delivery_log(
    client: httpx2.AsyncClient, api: str, owner: Credentials
) -> tuple[str, list[dict[str, Any]]]:
    """What the tenant's one endpoint's log answers, and the deliveries it shows."""
    [hook] = (await client.get(f"{api}/webhooks", headers=owner.headers)).json()
    log = await client.get(f"{api}/webhooks/{hook['id']}/deliveries", headers=owner.headers)
    assert log.status_code == 200, log.text
    return log.text, log.json()["deliveries"]


def about(deliveries: list[dict[str, Any]]) -> list[str]:
    """The threads ``conversation.idle`` deliveries are about, in order."""
    return [d["payload"]["data"]["id"] for d in deliveries]


def stored_text(row: WebhookDelivery) -> str:
    return json.dumps(row.payload) + (row.response_snippet or "")


@pytest.mark.parametrize("by", ["staff", "the visitor"])
async def test_a_deleted_conversations_idle_transcripts_leave_the_delivery_log(
    client: httpx2.AsyncClient,
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    receiver: Receiver,
    sent: list[tuple[str, list[Any]]],
    by: str,
) -> None:
    """The transcript stayed in the log (payload and the receiver's answer) until the
    retention purge, and one still pending was sent after the conversation was deleted."""
    said = SECRET.encode()
    receiver.answer = lambda body: b"Thanks for: " + said if said in body else b"ok"
    hook = {"events": ["conversation.idle"], "idle_minutes": 10}
    widget, _ = await chat_tenant_with_hook(client, app, db, fake_openai, receiver, **hook)
    elsewhere, _ = await chat_tenant_with_hook(client, app, db, fake_openai, receiver, **hook)
    api, owner = await owner_of(app, db, widget)
    their_api, their_owner = await owner_of(app, db, elsewhere)
    alice = await visitor(http, app, db, widget)  # anonymous
    thread = thread_of(await alice.send(SECRET))
    bob = await visitor(http, app, db, widget, end_user="u:9")
    bobs = thread_of(await bob.send(KEPT))
    carol = await visitor(http, app, db, elsewhere)
    carols = thread_of(await carol.send(THEIRS))
    keys = app.state.settings.keys()

    await announce_idle(app.state.sessionmaker, keys, utcnow() + timedelta(minutes=11))
    assert await run_deliveries(app, sent) == [True] * 3, "one per conversation, sent"
    await alice.send("Still there?", thread_id=thread)  # idle again: a pending transcript
    await announce_idle(app.state.sessionmaker, keys, utcnow() + timedelta(minutes=11))
    # Only the delivery: the chat's analytics may have been sent meanwhile (their buffer's
    # timer), as on a busy machine.
    assert len([task for task in sent if task[0] == deliver.name]) == 1
    rows = (await db.scalars(select(WebhookDelivery))).all()
    assert sorted((r.status, r.response_snippet) for r in rows if r.thread_id == thread) == [
        ("delivered", f"Thanks for: {SECRET}"),
        ("pending", None),
    ]
    assert sum(SECRET in json.dumps(r.payload) for r in rows) == 2
    shown, deliveries = await delivery_log(client, api, owner)
    assert SECRET in shown
    assert sorted(about(deliveries)) == sorted([thread, thread, bobs])
    before = len(receiver.received)

    if by == "staff":
        deleted = await client.delete(f"{api}/conversations/{thread}", headers=owner.headers)
        assert deleted.status_code == 204, deleted.text
    else:
        await alice.call("threads.delete", thread_id=thread)

    shown, deliveries = await delivery_log(client, api, owner)
    assert SECRET not in shown
    assert about(deliveries) == [bobs]
    shown, deliveries = await delivery_log(client, their_api, their_owner)
    assert about(deliveries) == [carols], "another tenant's untouched"
    db.expire_all()
    rows = (await db.scalars(select(WebhookDelivery))).all()
    assert [r for r in rows if r.thread_id == thread or SECRET in stored_text(r)] == []
    assert {r.thread_id: r.payload["data"]["items"][0]["text"] for r in rows} == {
        bobs: KEPT,
        carols: THEIRS,
    }
    assert await run_deliveries(app, sent) == [True], "the pending one: nothing to send"
    assert receiver.received[before:] == [], "not sent after the conversation was deleted"
