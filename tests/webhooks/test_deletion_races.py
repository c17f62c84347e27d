"""A conversation deleted while a delivery about it is written (the idle announcement's
transcript, a replay), through a real server whose units of work commit (``tests.races``):
the deletion, by staff or by the visitor, waits for the writer and takes its delivery too;
none outlives the thread. A tenant deleted while an attempt takes its turn or ends: one
waits for the other, never both for each other (PostgreSQL's deadlock)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import SYSTEM, TenantAccess, UserPrincipal
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
from kithost.tenants import service as tenants
from kithost.webhooks import repository
from kithost.webhooks import service as webhooks
from kithost.webhooks.delivery import Attempt
from tests.chat.helpers import ALICE, chat_widget, http, racing, tenant_checks, visitor
from tests.conversations.helpers import conversation
from tests.factories import client_token
from tests.fakes.openai_server import FakeOpenAI
from tests.races import RacingApp, ended_or_waiting
from tests.webhooks.helpers import Receiver, attempt, hook_at, pending

__all__ = ["http", "racing", "tenant_checks"]  # the fixtures: chat races'

SECRET = "My card is 4111 1111 1111 1111"


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
        await ended_or_waiting(racing, deleting, "%chat_threads%")
    await deleting

    async with racing.arranging() as session:
        assert await session.scalar(select(ChatThread.id).where(ChatThread.id == thread)) is None
        mine = WebhookDelivery.tenant_id == tenant.id
        left = (await session.scalars(select(WebhookDelivery.payload).where(mine))).all()
    assert [p for p in left if SECRET in str(p)] == []


def attempt_under_way(racing: RacingApp, task: tuple[str, list[Any]]) -> asyncio.Task[Attempt]:
    """An attempt of the delivery, under way (as a worker's, its units of work committing)."""
    return asyncio.create_task(attempt(racing.app, task), name="the attempt")


def deletion(racing: RacingApp, tenant: Tenant) -> asyncio.Task[None]:
    """The tenant's deletion, under way (as the operator's command's)."""

    async def delete() -> None:
        async with racing.arranging() as session:
            found = await session.get_one(Tenant, tenant.id)
            await tenants.remove_tenant(session, SYSTEM, found, found.slug)

    return asyncio.create_task(delete(), name="the deletion")


async def gone(racing: RacingApp, tenant: Tenant) -> bool:
    async with racing.arranging() as session:
        return await session.get(Tenant, tenant.id) is None


async def test_a_tenant_deleted_while_an_attempt_ends_waits_for_it_or_it_for_the_deletion(
    racing: RacingApp, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tenant's deletion takes its threads' deliveries (the chat's part), then the
    tenant's row and, by the cascade, its endpoints; an attempt ending took its endpoint
    (ending its hold), then waited for its delivery: each waited for the other, and
    PostgreSQL ended one (the deletion answering 503 ``database_unavailable``, or the
    attempt failing). The attempt holds its tenant first and leaves a delivery being
    deleted unrecorded: both end, the tenant gone."""
    if racing.app.state.engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    app = racing.app
    widget, tenant = await chat_widget(racing, fake_openai)
    with Receiver() as receiver:
        async with racing.arranging() as session:
            hook = await hook_at(app, session, tenant, receiver.url)
            thread = await conversation(session, widget, ALICE, [SECRET, "Noted."])
            task = await pending(session, hook, thread=thread)
        chat_part_done, go_on = asyncio.Event(), asyncio.Event()

        async def pause(_session: AsyncSession, _tenant: Tenant) -> None:
            chat_part_done.set()
            await go_on.wait()

        parts = [*tenants._TENANT_DATA, pause]  # the chat's part runs before the pause
        monkeypatch.setattr(tenants, "_TENANT_DATA", parts)

        receiver.gates = {1: threading.Event()}
        attempting = attempt_under_way(racing, task)
        assert await asyncio.to_thread(receiver.has_received, 1)  # holding its endpoint
        deleting = deletion(racing, tenant)
        await chat_part_done.wait()  # the thread's deliveries are the deletion's
        receiver.gates[1].set()
        await ended_or_waiting(racing, attempting, "%webhook_deliveries%")
        go_on.set()
        outcome, _ = await asyncio.gather(attempting, deleting)
    assert outcome.retry is False
    assert await gone(racing, tenant)


async def test_a_tenant_deleted_while_an_attempt_takes_its_turn_waits_for_it(
    racing: RacingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attempt to a slow endpoint held it, then took its tenant's slot: a row inserted,
    whose foreign key waited for the tenant's row, which the deletion held while its cascade
    waited for the endpoint: each waited for the other. The attempt holds its tenant first:
    the deletion waits for it, and it for the deletion once it ends."""
    if racing.app.state.engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    app = racing.app
    with Receiver() as receiver:
        async with racing.arranging() as session:
            tenant = await racing.tenant(session)
            task = await pending(session, await hook_at(app, session, tenant, receiver.url))
        endpoint_held, go_on = asyncio.Event(), asyncio.Event()
        claim_tenant_slot = repository.claim_tenant_slot

        async def after_a_pause(*args: Any) -> datetime | None:
            endpoint_held.set()
            await go_on.wait()
            return await claim_tenant_slot(*args)

        monkeypatch.setattr(repository, "claim_tenant_slot", after_a_pause)
        attempting = attempt_under_way(racing, task)
        await endpoint_held.wait()
        deleting = deletion(racing, tenant)
        await ended_or_waiting(racing, deleting, "%DELETE FROM tenants%")
        go_on.set()
        outcome, _ = await asyncio.gather(attempting, deleting)
    assert outcome.retry is False
    assert await gone(racing, tenant)
