"""Retention and erasure in domain terms: :func:`purge_expired` (each tenant's, hourly) and
:func:`delete_end_user` are the one place where end users' data is removed.

Analytics removes its own rows, and the webhook deliveries of the package below it (their
payloads carry what visitors said); the domains above it holding end users' data under the
same retention (chat: threads, items, attachments) register a :class:`DataOwner` when their
service module is imported, so analytics never imports them. Every process imports them:
the API through its routers, workers and beat through ``kithost.cli`` (which builds the app).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.analytics.retention import repository
from kithost.audit import service as audit
from kithost.auth.principals import Actor
from kithost.db import Sessionmaker, session_scope
from kithost.errors import NotFound, invalid_field
from kithost.kit import pseudonyms
from kithost.kit.keys import Keys
from kithost.models import Tenant
from kithost.models.base import utcnow
from kithost.tenants import repository as tenants
from kithost.webhooks import repository as webhooks


@dataclass(frozen=True)
class DataOwner:
    """A domain holding end users' data that purges and end-user deletions reach. Both
    functions run in the caller's unit of work and return the number of rows removed."""

    name: str
    """Its key in what :func:`purge_expired` and :func:`delete_end_user` return."""
    purge_before: Callable[[AsyncSession, uuid.UUID, datetime], Awaitable[int]]
    """Remove the tenant's data older than the cutoff."""
    delete_end_user: Callable[[AsyncSession, uuid.UUID, str], Awaitable[int]]
    """Remove one end user's data from the tenant."""


_owners: dict[str, DataOwner] = {}


def register(owner: DataOwner) -> None:
    """Let ``owner`` take part in purges and end-user deletions (one owner per name)."""
    _owners[owner.name] = owner


async def purge_expired(session: AsyncSession, tenant_id: uuid.UUID, days: int) -> dict[str, int]:
    """Remove what is older than the tenant's retention: error groups (with their samples)
    last seen before it, the end users of the others who last met them before it, raw
    events, webhook deliveries (their payloads carry what visitors said) and what the data
    owners hold (chat threads, items and attachments). Rollups stay: they hold no personal
    data.

    The groups go before the events, as :func:`delete_end_user` takes them (a sample is
    found by its event): a purge holding an expired event while waiting for its group, which
    an erasure held while waiting for the event, was a deadlock on PostgreSQL."""
    cutoff = utcnow() - timedelta(days=days)
    removed = {
        "error_groups": await repository.purge_error_groups(session, tenant_id, cutoff),
        "error_group_users": await repository.purge_error_group_users(session, tenant_id, cutoff),
        "events": await repository.purge_events(session, tenant_id, cutoff),
        "webhook_deliveries": await webhooks.purge_deliveries(session, tenant_id, cutoff),
    }
    for owner in _owners.values():
        removed[owner.name] = await owner.purge_before(session, tenant_id, cutoff)
    return removed


async def purge_all(sessionmaker: Sessionmaker) -> dict[str, int]:
    """:func:`purge_expired` for every tenant, each in its own transaction."""
    async with session_scope(sessionmaker) as session:
        await rls.bypass(session, rls.Bypass.sweep)
        tenants = await repository.tenants_with_retention(session)
    totals: dict[str, int] = defaultdict(int)
    for tenant_id, days in tenants:
        async with session_scope(sessionmaker, tenant=tenant_id) as session:
            for kind, count in (await purge_expired(session, tenant_id, days)).items():
                totals[kind] += count
    return dict(totals)


async def delete_end_user(
    session: AsyncSession, tenant: Tenant, actor: Actor, end_user_id: str, keys: Keys
) -> dict[str, int]:
    """Remove one end user's data from the tenant, and record that in the audit log, an
    anonymous end user there as exports show them (``keys`` hashing the device id, a
    credential: members:read reads the log). Error samples go before the events they are
    found by, webhook deliveries about their threads before the data owners delete the
    threads.

    The end user's threads are held first, then the tenant's row (shared), as every other
    deletion takes them (a conversation's, a tenant's: threads, what is theirs, then the
    tenant's row and its cascade): one waits for the other, never both for each other
    (PostgreSQL's deadlock). A tenant deleted meanwhile is 404 ``tenant_not_found``.

    A pseudonym (``a:h_…``, the only id staff see for an anonymous visitor) is refused, 422
    on ``end_user``: it is a keyed hash, matched to no stored end user without hashing each
    of the tenant's; the visitor's own ``a:anon_…`` id is what erases them."""
    if end_user_id.startswith(pseudonyms.PREFIX):
        raise invalid_field(
            "end_user",
            "a:h_… is how Kithost shows an anonymous visitor, not their id: give the visitor's "
            "own id (a:anon_…, the end_user their session answers with)",
        )
    await repository.lock_end_user_threads(session, tenant.id, end_user_id)
    if not await tenants.hold_tenant(session, tenant.id):
        raise NotFound(f"No tenant {tenant.slug!r}.", code="tenant_not_found")
    removed = {
        "error_occurrences": await repository.forget_error_group_user(
            session, tenant.id, end_user_id
        ),
        "events": await repository.delete_end_user_events(session, tenant.id, end_user_id),
        "webhook_deliveries": await webhooks.delete_end_user_deliveries(
            session, tenant.id, end_user_id
        ),
    }
    for owner in _owners.values():
        removed[owner.name] = await owner.delete_end_user(session, tenant.id, end_user_id)
    audit.record(
        session,
        actor,
        "analytics.end_user_deleted",
        tenant_id=tenant.id,
        target_type="end_user",
        data={"end_user": pseudonyms.exported_end_user(end_user_id, keys), "removed": removed},
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
