"""Analytics in domain terms: batches in, events stored once, rollups, queries, retention.

- The API turns a body into a :class:`Batch` (:func:`parse_batch`) without any database.
- Workers :func:`store` events idempotently: only events inserted now count into error
  groups and mark their hour for the rollup, so a redelivered batch changes nothing.
- :func:`rollup_pending` recomputes marked hours (and their UTC days) from raw events;
  :func:`recompute` does it for any window.
- :func:`purge_expired` and :func:`delete_end_user` are the one place where analytics data
  (and, once the chat store exists, chat data) is removed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics import repository
from kithost.audit import service as audit
from kithost.audit.service import Actor
from kithost.chat import service as chat
from kithost.db import Sessionmaker, session_scope
from kithost.models import Tenant
from kithost.models.base import utcnow

log = structlog.get_logger(__name__)


# --- retention and deletion ------------------------------------------------------------


async def purge_expired(session: AsyncSession, tenant_id: uuid.UUID, days: int) -> dict[str, int]:
    """Remove what is older than the tenant's retention: raw events, error groups (with
    their samples) last seen before it, and chat threads, items and attachments (their files
    after the commit). Rollups stay: they hold no personal data."""
    cutoff = utcnow() - timedelta(days=days)
    return {
        "events": await repository.purge_events(session, tenant_id, cutoff),
        "error_groups": await repository.purge_error_groups(session, tenant_id, cutoff),
        "chat": await chat.purge_before(session, tenant_id, cutoff),
    }


async def purge_all(sessionmaker: Sessionmaker) -> dict[str, int]:
    """:func:`purge_expired` for every tenant, each in its own transaction."""
    async with session_scope(sessionmaker) as session:
        tenants = await repository.tenants_with_retention(session)
    totals: dict[str, int] = defaultdict(int)
    for tenant_id, days in tenants:
        async with session_scope(sessionmaker) as session:
            for kind, count in (await purge_expired(session, tenant_id, days)).items():
                totals[kind] += count
    return dict(totals)


async def delete_end_user(
    session: AsyncSession, tenant: Tenant, actor: Actor, end_user_id: str
) -> dict[str, int]:
    """Remove one end user's data from the tenant, and record that in the audit log."""
    removed = {
        "events": await repository.delete_end_user_events(session, tenant.id, end_user_id),
        "error_occurrences": await repository.forget_error_group_user(
            session, tenant.id, end_user_id
        ),
        "chat": await chat.delete_end_user_data(session, tenant.id, end_user_id),
    }
    audit.record(
        session,
        actor,
        "analytics.end_user_deleted",
        tenant_id=tenant.id,
        target_type="end_user",
        data={"end_user": end_user_id, "removed": removed},
    )
    return removed


async def retention(session: AsyncSession, tenant: Tenant) -> int:
    return await repository.retention_days(session, tenant.id)


async def set_retention(session: AsyncSession, tenant: Tenant, actor: Actor, days: int) -> int:
    before = await repository.retention_days(session, tenant.id)
    await repository.set_retention_days(session, tenant.id, days)
    audit.record(
        session,
        actor,
        "analytics.retention_changed",
        tenant_id=tenant.id,
        data=audit.changes({"retention_days": before}, {"retention_days": days}),
    )
    return days
