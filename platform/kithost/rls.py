"""Row-level security: PostgreSQL's second lock behind the repositories' tenant filters.

Every tenant-owned table has the policy ``tenant_isolation`` (migration ``5f0c3a7e21b4``):
a row is visible and writable only when its ``tenant_id`` is the transaction's
``kithost.tenant_id``, or when the transaction bypasses (``kithost.rls_bypass = on``). The
app connects as a role the policy binds (no superuser, no BYPASSRLS, not the tables' owner;
``Settings.migration_database_url``), so a query that forgets its tenant filter finds
nothing of another tenant, and without a tenant it finds nothing at all.

A session says whose data it works on once, where the tenant is known:

- :func:`set_tenant` — the tenant routes' dependency (``auth.dependencies.tenant_access``),
  the visitor routes once the widget is found (``visitor.cache``), tasks (they take the
  tenant id), the chat store's units of work;
- :func:`bypassing` (one block), :func:`bypass` (the rest of the session) or
  :func:`bypassing_sessions` (every session of an operator's command) — only where no single
  tenant is known, each naming its reason in :class:`Bypass`: looking up what identifies
  the caller (a client id, an invitation token, a user's memberships), the visitor's widget
  by its public key, sweeps over every tenant, operators' commands.

Both last for the session: they are applied again at the start of each of its
transactions. On SQLite (one tenant-agnostic file, no roles) both are no-ops.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

TENANT = "kithost.tenant_id"
BYPASS = "kithost.rls_bypass"
SET_SCOPE = text(
    "SELECT set_config(:tenant_name, :tenant, true), set_config(:bypass_name, :bypass, true)"
)


class Bypass(StrEnum):
    """Why a session may see every tenant's rows: the only reasons there are."""

    credentials = "credentials"
    """Resolving the caller (an API client by its id, a user's memberships, an invitation
    by its token) before any tenant is known."""
    public_key = "public_key"
    """Finding a visitor's widget by its public key: its tenant is known only then."""
    sweep = "sweep"
    """Finding what a periodic task must do in every tenant (retention, pending rollups,
    idle conversations to announce);
    the work itself runs scoped to each tenant."""
    platform = "platform"
    """An operator's command (``kithost …``): tenants, users, key rotation, demo seeding;
    and a platform admin reading the platform's own audit entries (no tenant)."""


async def set_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Scope ``session`` to ``tenant_id``'s rows (ending any bypass)."""
    await _apply(session, {TENANT: str(tenant_id)})


async def bypass(session: AsyncSession, reason: Bypass) -> None:
    """Let ``session`` see every tenant's rows, for ``reason``."""
    await _apply(session, {BYPASS: reason.value})


@asynccontextmanager
async def bypassing(session: AsyncSession, reason: Bypass) -> AsyncIterator[None]:
    """Bypass for the block only: ``session``'s tenant (or nothing) again after it."""
    before = {k: session.info[k] for k in (TENANT, BYPASS) if k in session.info}
    await bypass(session, reason)
    try:
        yield
    finally:
        await _apply(session, before)


def bypassing_sessions(
    sessionmaker: async_sessionmaker[AsyncSession], reason: Bypass
) -> async_sessionmaker[AsyncSession]:
    """``sessionmaker`` with each of its sessions bypassing for ``reason`` from the start
    (operators' commands), until one is scoped to a tenant."""
    sessionmaker.configure(info={**sessionmaker.kw.get("info", {}), BYPASS: reason.value})
    return sessionmaker


async def _apply(session: AsyncSession, scope: dict[str, str]) -> None:
    session.info.pop(TENANT, None)
    session.info.pop(BYPASS, None)
    session.info.update(scope)
    if session.in_transaction() and _is_postgresql(session.sync_session):
        await session.execute(SET_SCOPE, scope_values(scope))


def scope_values(info: dict[str, Any]) -> dict[str, str]:
    """:data:`SET_SCOPE`'s parameters for a session's ``info``: empty settings unscoped."""
    return {
        "tenant_name": TENANT,
        "tenant": info.get(TENANT, ""),
        "bypass_name": BYPASS,
        "bypass": "on" if BYPASS in info else "",
    }


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@event.listens_for(Session, "after_begin")
def _on_begin(session: Session, _transaction: SessionTransaction, connection: Any) -> None:
    """Apply the session's tenant or bypass to each transaction it begins."""
    if (TENANT in session.info or BYPASS in session.info) and _is_postgresql(session):
        connection.execute(SET_SCOPE, scope_values(session.info))
