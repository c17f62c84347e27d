"""An end user's erasure while a staff member deletes one of their conversations, or while
their tenant is deleted, through units of work that commit (``tests.races``): whichever
starts first, one waits for the other, never both for each other (PostgreSQL's deadlock,
the request answering 503 ``database_unavailable``). Each deletion takes the threads
first, then what is theirs (deliveries, items), then the tenant's row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.ingestion import service as ingestion
from kithost.analytics.retention import repository as retention_repository
from kithost.analytics.retention import service as retention
from kithost.auth.principals import SYSTEM, TenantAccess, UserPrincipal
from kithost.auth.roles import ALL_SCOPES
from kithost.chat import service as chat
from kithost.conversations import service as conversations
from kithost.db import session_scope
from kithost.errors import KithostError
from kithost.models import (
    AnalyticsEvent,
    ChatThread,
    ErrorGroup,
    Role,
    Tenant,
    User,
    WebhookDelivery,
)
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.tenants import service as tenants
from tests.analytics.helpers import USER, published_widget, server, stamped
from tests.conversations.helpers import conversation
from tests.races import RacingApp, ended_or_waiting, racing_app
from tests.webhooks.helpers import hook_at, pending

T = TypeVar("T")


@pytest.fixture
async def racing(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RacingApp]:
    async with racing_app(settings, monkeypatch) as racing:
        if racing.app.state.engine.dialect.name != "postgresql":
            pytest.skip("needs concurrent write transactions")
        yield racing


async def end_user_data(racing: RacingApp, *, chatted: bool) -> tuple[Tenant, str]:
    """A tenant whose end user has an event and, ``chatted``, a conversation and a delivery
    about it; the conversation's id (made up if not)."""
    async with racing.arranging() as session:
        tenant = await racing.tenant(session)
        widget = await published_widget(session, tenant)
        thread = "thr_none"
        if chatted:
            thread = await conversation(session, widget, USER, ["My card is 4111", "Noted."])
            hook = await hook_at(racing.app, session, tenant, "https://hooks.example.com/r")
            await pending(session, hook, thread=thread)
        facts = stamped([server("server.thread.created", thread_id=thread)])
        assert await ingestion.store(session, tenant.id, widget.id, facts, utcnow()) == 1
    return tenant, thread


def run(
    racing: RacingApp,
    tenant: Tenant,
    name: str,
    work: Callable[[AsyncSession, Tenant], Awaitable[T]],
) -> asyncio.Task[T]:
    """``work(session, tenant)`` under way in a unit of work of the tenant's, as a request's."""

    async def unit() -> T:
        async with session_scope(racing.app.state.sessionmaker, tenant=tenant.id) as session:
            return await work(session, await session.get_one(Tenant, tenant.id))

    return asyncio.create_task(unit(), name=name)


def erasure(racing: RacingApp, tenant: Tenant) -> asyncio.Task[dict[str, int]]:
    keys = racing.app.state.settings.keys()

    async def erase(session: AsyncSession, found: Tenant) -> dict[str, int]:
        return await retention.delete_end_user(session, found, SYSTEM, USER, keys)

    return run(racing, tenant, "the erasure", erase)


def conversation_deletion(racing: RacingApp, tenant: Tenant, thread: str) -> asyncio.Task[None]:
    staff = UserPrincipal(User(id=uuid.uuid4(), email="staff@race.test"), uuid.uuid4())

    async def delete(session: AsyncSession, found: Tenant) -> None:
        access = TenantAccess(found, staff, ALL_SCOPES, Role.owner)
        await conversations.delete_conversation(session, access, thread)

    return run(racing, tenant, "the conversation's deletion", delete)


def tenant_deletion(racing: RacingApp, tenant: Tenant) -> asyncio.Task[None]:
    async def delete(session: AsyncSession, found: Tenant) -> None:
        await tenants.remove_tenant(session, SYSTEM, found, found.slug)

    return run(racing, tenant, "the tenant's deletion", delete)


def code(outcome: object) -> object:
    """The code of the service's error ``outcome``; else ``outcome`` (a result, another
    exception)."""
    return outcome.code if isinstance(outcome, KithostError) else outcome


def pausing(reached: asyncio.Event, go_on: asyncio.Event) -> Callable[..., Awaitable[int]]:
    async def pause(*_args: object) -> int:
        reached.set()
        await go_on.wait()
        return 0

    return pause


@pytest.mark.parametrize(
    ("rival", "chatted"),
    [("conversation", True), ("tenant", True), ("tenant", False)],
    ids=["conversation", "tenant", "tenant, events alone"],
)
@pytest.mark.parametrize("first", ["the erasure", "the rival"])
async def test_an_end_user_erased_while_their_conversation_or_tenant_is_deleted(
    racing: RacingApp, monkeypatch: pytest.MonkeyPatch, rival: str, chatted: bool, first: str
) -> None:
    """The erasure deleted the end user's events and their threads' deliveries, then locked
    their threads, which a conversation's deletion (and the tenant's: its chat part) lock
    before deleting their deliveries, and the tenant's deletion their events (its row's
    cascade, after the threads): each waited for the other. The first paused where it
    holds the most (the erasure: before its data owners; the conversation's deletion: its
    thread locked; the tenant's: its chat part done), the other started until it waits:
    both end. An end user without conversations: the erasure deleted their events, then
    waited for the tenant's row (its audit entry's foreign key), which the tenant's
    deletion held while its cascade waited for the events; the erasure holds the tenant's
    row (shared) before."""
    tenant, thread = await end_user_data(racing, chatted=chatted)
    reached, go_on = asyncio.Event(), asyncio.Event()
    pause = pausing(reached, go_on)
    if first == "the erasure":
        owners = {"pause": retention.DataOwner("pause", pause, pause), **retention._owners}
        monkeypatch.setattr(retention, "_owners", owners)
    elif rival == "conversation":
        delete_thread = chat.delete_thread

        async def after_a_pause(*args: Any) -> int:
            await pause()
            return await delete_thread(*args)

        monkeypatch.setattr(chat, "delete_thread", after_a_pause)
    else:
        monkeypatch.setattr(tenants, "_TENANT_DATA", [*tenants._TENANT_DATA, pause])

    def rivalling() -> asyncio.Task[None]:
        if rival == "conversation":
            return conversation_deletion(racing, tenant, thread)
        return tenant_deletion(racing, tenant)

    leading = erasure(racing, tenant) if first == "the erasure" else rivalling()
    await reached.wait()
    following = rivalling() if first == "the erasure" else erasure(racing, tenant)
    try:
        await ended_or_waiting(racing, following)  # for a lock on any row
    finally:
        go_on.set()
    outcomes = await asyncio.gather(leading, following, return_exceptions=True)

    erased = outcomes[0] if first == "the erasure" else outcomes[1]
    rivals = outcomes[1] if first == "the erasure" else outcomes[0]
    if rival == "tenant" and chatted and first == "the rival":
        assert code(erased) == "tenant_not_found"
    else:
        assert isinstance(erased, dict), erased
    if rival == "conversation" and first == "the erasure":
        assert code(rivals) == "conversation_not_found"
    else:
        assert rivals is None, rivals
    async with racing.arranging() as session:
        assert await session.scalar(select(ChatThread.id).where(ChatThread.id == thread)) is None
        deliveries = select(WebhookDelivery.id).where(WebhookDelivery.tenant_id == tenant.id)
        events = select(AnalyticsEvent.event_id).where(AnalyticsEvent.tenant_id == tenant.id)
        assert (await session.scalars(deliveries)).all() == []
        assert (await session.scalars(events)).all() == []


async def test_an_end_user_erased_while_the_purge_removes_their_expired_error(
    racing: RacingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purge deleted the tenant's expired events, then its expired error groups; the
    erasure emptied the sample of a group (the end user's event), then deleted their events:
    one held the event the other waited for, the other the group. The purge, paused before
    the groups, now takes them (and their end users) before the events, as the erasure:
    both end, the group and the event gone."""
    days = 30
    expired = utcnow() - timedelta(days=days + 1)
    async with racing.arranging() as session:
        tenant = await racing.tenant(session)
        widget = await published_widget(session, tenant)
        event = AnalyticsEvent(
            tenant_id=tenant.id,
            event_id="ev_expired",
            widget_id=widget.id,
            name="client.error",
            occurred_at=expired,
            received_at=expired,
            end_user_id=USER,
            thread_id=None,
            data={},
        )
        group = ErrorGroup(
            tenant_id=tenant.id,
            widget_id=widget.id,
            fingerprint="f" * 64,
            kind="network",
            message="Failed to fetch",
            frame=None,
            hint=None,
            sample={"event_id": event.event_id},
            first_seen=expired,
            last_seen=expired,
            count=1,
        )
        session.add_all([event, group])
    reached, go_on = asyncio.Event(), asyncio.Event()
    purge_error_groups = retention_repository.purge_error_groups

    async def after_a_pause(*args: Any) -> int:
        await pausing(reached, go_on)()
        return await purge_error_groups(*args)

    monkeypatch.setattr(retention_repository, "purge_error_groups", after_a_pause)

    async def purge(session: AsyncSession, found: Tenant) -> dict[str, int]:
        return await retention.purge_expired(session, found.id, days)

    purging = run(racing, tenant, "the purge", purge)
    await reached.wait()
    erasing = erasure(racing, tenant)
    try:
        await ended_or_waiting(racing, erasing)  # for a lock on any row
    finally:
        go_on.set()
    purged, erased = await asyncio.gather(purging, erasing, return_exceptions=True)

    assert isinstance(purged, dict), purged
    assert isinstance(erased, dict), erased
    async with racing.arranging() as session:
        assert await session.get(ErrorGroup, group.id) is None
        events = select(AnalyticsEvent.event_id).where(AnalyticsEvent.tenant_id == tenant.id)
        assert (await session.scalars(events)).all() == []
