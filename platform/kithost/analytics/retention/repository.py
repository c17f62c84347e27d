"""SQL of retention: the tenant's setting, and deleting raw events, error groups and an end
user's traces (their chat threads held first). Every statement takes the tenant, except the
sweep's list of tenants."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Integer, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.errors.repository import end_user_hash
from kithost.analytics.sql import Stored
from kithost.db import insert, rowcount
from kithost.models import AnalyticsSettings, ChatThread, ErrorGroup, ErrorGroupUser, Tenant
from kithost.models.analytics_settings import DEFAULT_RETENTION_DAYS


async def retention_days(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    days = await session.scalar(
        select(AnalyticsSettings.retention_days).where(AnalyticsSettings.tenant_id == tenant_id)
    )
    return DEFAULT_RETENTION_DAYS if days is None else days


async def set_retention_days(session: AsyncSession, tenant_id: uuid.UUID, days: int) -> None:
    statement = insert(session, AnalyticsSettings).values(tenant_id=tenant_id, retention_days=days)
    statement = statement.on_conflict_do_update(
        index_elements=[AnalyticsSettings.tenant_id],
        set_={"retention_days": statement.excluded.retention_days},
    )
    await session.execute(statement)


async def tenants_with_retention(session: AsyncSession) -> Sequence[tuple[uuid.UUID, int]]:
    """Every tenant and its retention in days (spans tenants: the retention sweep)."""
    days = func.coalesce(AnalyticsSettings.retention_days, DEFAULT_RETENTION_DAYS)
    query = select(Tenant.id, days.cast(Integer)).outerjoin(
        AnalyticsSettings, AnalyticsSettings.tenant_id == Tenant.id
    )
    return [(tenant_id, d) for tenant_id, d in await session.execute(query)]


async def purge_events(session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime) -> int:
    result = await session.execute(
        delete(Stored).where(Stored.tenant_id == tenant_id, Stored.occurred_at < cutoff)
    )
    return rowcount(result)


async def purge_error_groups(session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime) -> int:
    """Groups (their samples and end users) last seen before ``cutoff``."""
    result = await session.execute(
        delete(ErrorGroup).where(ErrorGroup.tenant_id == tenant_id, ErrorGroup.last_seen < cutoff)
    )
    return rowcount(result)


async def purge_error_group_users(
    session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime
) -> int:
    """Groups' end users whose latest occurrence of the group is before ``cutoff`` (the
    group may recur for others: it stays)."""
    result = await session.execute(
        delete(ErrorGroupUser).where(
            ErrorGroupUser.tenant_id == tenant_id, ErrorGroupUser.last_seen < cutoff
        )
    )
    return rowcount(result)


async def lock_end_user_threads(
    session: AsyncSession, tenant_id: uuid.UUID, end_user_id: str
) -> None:
    """Hold the end user's chat threads (``FOR UPDATE``, in the order of their ids) until the
    unit of work ends, before anything else of theirs: every deletion of threads takes them
    first (``chat.repository.delete_threads``: a conversation's, a tenant's), then what is
    theirs (deliveries, items) and, a tenant's, its row and by the cascade its events and
    error groups; an erasure taking any of those before the threads waited in a circle with
    it. A thread deleted meanwhile is waited for and left out."""
    await session.execute(
        select(ChatThread.id)
        .where(ChatThread.tenant_id == tenant_id, ChatThread.end_user_id == end_user_id)
        .order_by(ChatThread.id)
        .with_for_update()
    )


async def delete_end_user_events(
    session: AsyncSession, tenant_id: uuid.UUID, end_user_id: str
) -> int:
    result = await session.execute(
        delete(Stored).where(Stored.tenant_id == tenant_id, Stored.end_user_id == end_user_id)
    )
    return rowcount(result)


async def forget_error_group_user(
    session: AsyncSession, tenant_id: uuid.UUID, end_user_id: str
) -> int:
    """Remove the end user from every group's affected users and drop samples of theirs:
    those of their events (a sample holds its event's id, not an anonymous end user's), so
    run it before :func:`delete_end_user_events`."""
    theirs = select(Stored.event_id).where(
        Stored.tenant_id == tenant_id, Stored.end_user_id == end_user_id
    )
    await session.execute(
        update(ErrorGroup)
        .where(
            ErrorGroup.tenant_id == tenant_id, ErrorGroup.sample["event_id"].as_string().in_(theirs)
        )
        .values(sample={})
    )
    result = await session.execute(
        delete(ErrorGroupUser).where(
            ErrorGroupUser.tenant_id == tenant_id,
            ErrorGroupUser.end_user_hash == end_user_hash(tenant_id, end_user_id),
        )
    )
    return rowcount(result)
