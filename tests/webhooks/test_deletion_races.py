"""A conversation deleted while a delivery about it is written (the idle announcement's
transcript, a replay), through a real server whose units of work commit (``tests.races``):
the deletion, by staff or by the visitor, waits for the writer and takes its delivery too;
none outlives the thread."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx2
import pytest
from sqlalchemy import select, text

from kithost.auth.principals import TenantAccess, UserPrincipal
from kithost.auth.roles import ALL_SCOPES
from kithost.auth.scopes import Scope
from kithost.conversations.idle import _announce
from kithost.db import session_scope
from kithost.models import (
    ChatThread,
    DeliveryStatus,
    Role,
    Tenant,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookIdleMark,
)
from kithost.models.base import utcnow
from kithost.webhooks import service as webhooks
from tests.chat.helpers import ALICE, visitor
from tests.chat.test_races import chat_widget, http, racing, tenant_checks
from tests.conversations.helpers import conversation
from tests.factories import client_token
from tests.fakes.openai_server import FakeOpenAI
from tests.races import RacingApp

__all__ = ["http", "racing", "tenant_checks"]  # the fixtures: chat races'

SECRET = "My card is 4111 1111 1111 1111"


async def ended_or_waiting(racing: RacingApp, deleting: asyncio.Task[None]) -> None:
    """Until the deletion has run as far as it can: ended, or waiting for a lock on the
    thread (the writer's, held until it commits)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query ILIKE '%chat_threads%'"
    )
    for _ in range(400):
        if deleting.done():
            return
        async with racing.arranging() as session:
            if await session.scalar(waiting):
                return
        await asyncio.sleep(0.025)
    raise AssertionError("the deletion neither ended nor waited")


@pytest.mark.parametrize("writer", ["announcement", "replay"])
@pytest.mark.parametrize("by", ["staff", "the visitor"])
async def test_a_conversation_deleted_while_a_delivery_about_it_is_written_takes_it_along(
    racing: RacingApp,
    http: httpx2.AsyncClient,
    fake_openai: FakeOpenAI,
    by: str,
    writer: str,
) -> None:
    """The deletion deleted the deliveries it saw, then the thread: a transcript the
    announcement wrote meanwhile (a thread announced before: its mark only changes), or a
    replay of one, was committed after, naming a thread gone, readable and sent until the
    retention purge."""
    if racing.app.state.engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    app = racing.app
    widget, tenant = await chat_widget(racing, fake_openai)
    async with racing.arranging() as session:
        hook = WebhookEndpoint(
            tenant_id=tenant.id,
            url="https://hooks.example.com/r",
            events=["conversation.idle"],
            idle_minutes=10,
            secret=app.state.secret_box.encrypt("whsec_x"),
        )
        session.add(hook)
        await session.flush()
        thread = await conversation(session, widget, ALICE, [SECRET, "Noted."])
        activity = await session.scalar(
            select(ChatThread.updated_at).where(ChatThread.id == thread)
        )
        assert activity is not None
        session.add(  # announced once before, active since
            WebhookIdleMark(
                tenant_id=tenant.id,
                endpoint_id=hook.id,
                thread_id=thread,
                activity_at=activity - timedelta(hours=1),
            )
        )
        sent = WebhookDelivery(
            tenant_id=tenant.id,
            endpoint_id=hook.id,
            event_id="msg_sent",
            event_type="conversation.idle",
            payload={"type": "conversation.idle", "data": {"id": thread, "text": SECRET}},
            thread_id=thread,
            status=DeliveryStatus.delivered,
        )
        session.add(sent)
        staff = await client_token(app, session, tenant, [Scope.conversations_write])
        alice = await visitor(http, app, session, widget, end_user=ALICE)

    async def delete() -> None:
        if by == "staff":
            url = f"/api/v1/tenants/{tenant.slug}/conversations/{thread}"
            deleted = await racing.client.delete(url, headers=staff.headers)
            assert deleted.status_code == 204, deleted.text
        else:
            await alice.call("threads.delete", thread_id=thread)

    async with session_scope(app.state.sessionmaker, tenant=tenant.id) as session:
        if writer == "announcement":
            keys, now = app.state.settings.keys(), utcnow() + timedelta(minutes=11)
            assert await _announce(session, tenant.id, hook.id, keys, now) == 1
        else:
            owner = UserPrincipal(User(id=uuid.uuid4(), email="owner@race.test"), uuid.uuid4())
            access = TenantAccess(
                await session.get_one(Tenant, tenant.id), owner, ALL_SCOPES, Role.owner
            )
            await webhooks.replay(session, access, hook.id, sent.id)
        await session.flush()
        deleting = asyncio.create_task(delete())
        await ended_or_waiting(racing, deleting)
    await deleting

    async with racing.arranging() as session:
        assert await session.scalar(select(ChatThread.id).where(ChatThread.id == thread)) is None
        mine = WebhookDelivery.tenant_id == tenant.id
        left = (await session.scalars(select(WebhookDelivery.payload).where(mine))).all()
    assert [p for p in left if SECRET in str(p)] == []
