"""Row-level security: PostgreSQL's second lock behind the repositories' tenant filters.

Every tenant-owned table has the policy ``tenant_isolation`` (migration ``5f0c3a7e21b4``):
a row is visible and writable only when its ``tenant_id`` is the transaction's
``kithost.tenant_id``, or when the transaction bypasses (``kithost.rls_bypass = on``). The
app connects as a role the policy binds (no superuser, no BYPASSRLS, and best not the
tables' owner, who may switch it off; ``Settings.migration_database_url``), so a query that
forgets its tenant filter finds nothing of another tenant, and without a tenant nothing.

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

The policy is forced (migration ``bb42f09518a6``): it binds the tables' owner too, so an app
that connects as the user that migrates is bound as well. Only superusers and roles with
BYPASSRLS pass it: :func:`check_binding` makes the API's and the workers' connections
refuse such a user in production (warn elsewhere). The bypass is a setting the app's own
role may make: the policy guards against a query that forgets its tenant, not against SQL
the app did not mean to run.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

TENANT = "kithost.tenant_id"
BYPASS = "kithost.rls_bypass"
log = structlog.get_logger(__name__)
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


class Unbound(RuntimeError):
    """The policy cannot bind the database user the process connects as."""


def check_binding(engine: AsyncEngine, *, refuse: bool) -> None:
    """On ``engine``'s first connection (PostgreSQL), check that the policy binds its user:
    not a superuser, no BYPASSRLS. If not, log it and, when ``refuse``, fail that connection
    and each next one (a process whose database is down still starts, and checks once it
    is back)."""
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine.sync_engine, "first_connect")
    def _check(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(ROLE)
            user, superuser, bypasses = cursor.fetchone()
        finally:
            cursor.close()
        if not (superuser or bypasses):
            return
        reason = f"the database user {user} {'is a superuser' if superuser else 'has BYPASSRLS'}"
        log.warning("rls.unbound", reason=reason, refused=refuse)
        if refuse:
            raise Unbound(
                f"Row-level security cannot bind the app: {reason}. Set "
                "KITHOST_DATABASE_URL to a role without SUPERUSER and BYPASSRLS."
            )


ROLE = "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@event.listens_for(Session, "after_begin")
def _on_begin(session: Session, _transaction: SessionTransaction, connection: Any) -> None:
    """Apply the session's tenant or bypass to each transaction it begins."""
    if (TENANT in session.info or BYPASS in session.info) and _is_postgresql(session):
        connection.execute(SET_SCOPE, scope_values(session.info))
