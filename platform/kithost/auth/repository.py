"""SQL for identity: signing keys, dashboard sessions, API clients by their public id and by
who made them, who made what (API clients, invitations) as the audit log recorded it, and
what resolving a tenant route reads (the tenant of a slug, a user's membership of it)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.auth.principals import Actor
from kithost.kit.schemas import NUL
from kithost.models import (
    ApiClient,
    AuditLogEntry,
    DashboardSession,
    Membership,
    SigningKey,
    Tenant,
    User,
)

CLIENT_CREATED = "client.created"
"""The audit action recording who made an API client: the one record of its maker."""


async def newest_signing_key(session: AsyncSession) -> SigningKey | None:
    result = await session.execute(
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def signing_keys_retired_after(session: AsyncSession, since: datetime) -> list[SigningKey]:
    result = await session.execute(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > since))
        .order_by(SigningKey.created_at.desc())
    )
    return list(result.scalars())


async def client_by_client_id(session: AsyncSession, client_id: str) -> ApiClient | None:
    """The client of ``client_id``, found in every tenant; its tenant is ``session``'s from
    here on (``rls``): the caller is that client. None for an id holding a NUL character,
    which no client has and PostgreSQL cannot compare (the token endpoint takes the id from
    a form or HTTP Basic, where percent-encoding can put one)."""
    if NUL in client_id:
        return None
    async with rls.bypassing(session, rls.Bypass.credentials):
        result = await session.execute(select(ApiClient).where(ApiClient.client_id == client_id))
    client = result.scalar_one_or_none()
    if client is not None:
        await rls.set_tenant(session, client.tenant_id)
    return client


async def lock_client(
    session: AsyncSession, tenant_id: uuid.UUID, id: uuid.UUID, *, share: bool = False
) -> ApiClient | None:
    """The tenant's API client as committed now, its row locked (PostgreSQL; ``share``: for
    share) until the unit of work ends: its revocation locks it for update, and what the
    client makes meanwhile (an invitation) locks it for share, so one waits for the other
    and sees it."""
    result = await session.execute(
        select(ApiClient)
        .where(ApiClient.tenant_id == tenant_id, ApiClient.id == id)
        .with_for_update(read=share)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def client_makers(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Actor]:
    """Who made each of the tenant's clients ``ids``, as the audit log recorded it."""
    return await makers(session, tenant_id, CLIENT_CREATED, ids)


async def makers(
    session: AsyncSession, tenant_id: uuid.UUID, action: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Actor]:
    """Who made each of the tenant's ``ids``: the actor of the audit entry of ``action`` (the
    one recording their making) whose target each is."""
    if not ids:
        return {}
    result = await session.execute(
        select(AuditLogEntry.target_id, AuditLogEntry.actor_type, AuditLogEntry.actor_id).where(
            AuditLogEntry.tenant_id == tenant_id,
            AuditLogEntry.action == action,
            AuditLogEntry.target_id.in_([str(i) for i in ids]),
        )
    )
    return {uuid.UUID(target): Actor(kind, by) for target, kind, by in result if target}


async def live_clients_made_by(
    session: AsyncSession, tenant_id: uuid.UUID, actor: Actor
) -> list[ApiClient]:
    """The tenant's clients that ``actor`` made (as the audit log recorded it) and that are
    not revoked, oldest first."""
    made = await session.execute(
        select(AuditLogEntry.target_id).where(
            AuditLogEntry.tenant_id == tenant_id,
            AuditLogEntry.action == CLIENT_CREATED,
            AuditLogEntry.actor_type == actor.type,
            AuditLogEntry.actor_id == actor.id,
        )
    )
    ids = [uuid.UUID(target) for target in made.scalars() if target]
    if not ids:
        return []
    result = await session.execute(
        select(ApiClient)
        .where(
            ApiClient.tenant_id == tenant_id,
            ApiClient.id.in_(ids),
            ApiClient.revoked_at.is_(None),
        )
        .order_by(ApiClient.created_at, ApiClient.id)
    )
    return list(result.scalars())


async def live_dashboard_session(
    session: AsyncSession, token_hash: str, now: datetime
) -> tuple[DashboardSession, User] | None:
    result = await session.execute(
        select(DashboardSession, User)
        .join(User, User.id == DashboardSession.user_id)
        .where(
            DashboardSession.token_hash == token_hash,
            DashboardSession.revoked_at.is_(None),
            DashboardSession.expires_at > now,
            User.is_active.is_(True),
        )
    )
    row = result.one_or_none()
    return None if row is None else (row[0], row[1])


async def revoke_dashboard_session(session: AsyncSession, token_hash: str, now: datetime) -> None:
    """Revoke the dashboard session of ``token_hash``, if there is one not revoked yet, live
    or not (a disabled user's would come back with the account)."""
    await session.execute(
        update(DashboardSession)
        .where(DashboardSession.token_hash == token_hash, DashboardSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    result = await session.execute(select(Tenant).where(Tenant.slug == slug))
    return result.scalar_one_or_none()


async def membership(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    result = await session.execute(
        select(Membership).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    )
    return result.scalar_one_or_none()
