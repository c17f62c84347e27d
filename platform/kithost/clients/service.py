from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth import repository as auth_repository
from kithost.auth.principals import Actor, ClientPrincipal, TenantAccess
from kithost.auth.scopes import Scope
from kithost.clients import repository
from kithost.errors import FieldError, Forbidden, NotFound, invalid_field
from kithost.invitations import service as invitations
from kithost.kit.tokens import hash_secret, random_token
from kithost.members import service as members
from kithost.models import ApiClient, Tenant
from kithost.models.base import utcnow


@dataclass(frozen=True)
class NewClient:
    """A client just created, with its secret: shown once, stored only as a hash."""

    client: ApiClient
    secret: str


def parse_scopes(scopes: Iterable[str]) -> list[Scope]:
    requested = [s.strip() for s in scopes if s.strip()]
    unknown = sorted({s for s in requested if s not in Scope._value2member_map_})
    if unknown or not requested:
        message = f"unknown scopes: {', '.join(unknown)}" if unknown else "at least one scope"
        raise invalid_field("scopes", message, "scope")
    return sorted({Scope(s) for s in requested})


async def create_client(
    session: AsyncSession, actor: Actor, tenant: Tenant, *, name: str, scopes: list[Scope]
) -> NewClient:
    secret = random_token("ks_", 32)
    client = ApiClient(
        tenant_id=tenant.id,
        name=name,
        client_id=random_token("kc_", 16),
        secret_hash=hash_secret(secret),
        scopes=sorted({s.value for s in scopes}),
    )
    session.add(client)
    await session.flush()
    audit.record(
        session,
        actor,
        auth_repository.CLIENT_CREATED,
        tenant_id=tenant.id,
        target_type="api_client",
        target_id=client.id,
        data={"name": client.name, "client_id": client.client_id, "scopes": client.scopes},
    )
    return NewClient(client, secret)


async def register_client(
    session: AsyncSession, access: TenantAccess, *, name: str, scopes: list[Scope]
) -> NewClient:
    """A client of the tenant of ``access``, with scopes that ``access`` holds itself as it
    stands now (``members.access_now``): a member removed or demoted, or a client revoked,
    at that moment either comes first and the client is refused, or waits and then names
    it among the clients its maker leaves (``clients_kept``)."""
    access = await members.access_now(session, access, Scope.clients_write)
    escalated = sorted(set(scopes) - access.scopes)
    if escalated:
        message = f"you do not hold {' '.join(escalated)}"
        raise Forbidden(
            f"Cannot grant scopes you do not hold: {' '.join(escalated)}.",
            code="scope_escalation",
            errors=[FieldError(field="scopes", message=message, type="scope_escalation")],
        )
    return await create_client(session, access.actor, access.tenant, name=name, scopes=scopes)


async def list_clients(
    session: AsyncSession, tenant: Tenant
) -> list[tuple[ApiClient, Actor | None]]:
    """Every client of the tenant, revoked ones included, with who made it."""
    clients = await repository.list_clients(session, tenant.id)
    makers = await auth_repository.client_makers(session, tenant.id, [c.id for c in clients])
    return [(c, makers.get(c.id)) for c in clients]


async def revoke_client(session: AsyncSession, access: TenantAccess, id: uuid.UUID) -> None:
    """Revoke a client: its tokens stop working at once, and the pending invitations it
    made are withdrawn, as a removed member's are; the clients it made keep working, as
    a removed member's do (the audit entry names them). Revoking it again changes nothing.

    The caller is read again and held as they stand now (``members.access_now``): a member
    removed or demoted, or a client revoked, at that moment is refused or waited for. The
    client's row stays locked until the unit of work ends, so an invitation the client
    makes at that moment is either refused or made first and withdrawn here."""
    access, client = await _caller_and_client(session, access, id)
    if client is None:
        raise NotFound(f"No API client {id}.", code="client_not_found")
    if client.revoked_at is not None:
        return
    client.revoked_at = utcnow()
    withdrawn = await invitations.withdraw_made_by(session, client)
    made = await auth_repository.live_clients_made_by(
        session, access.tenant.id, Actor("client", client.client_id)
    )
    audit.record(
        session,
        access.actor,
        "client.revoked",
        tenant_id=access.tenant.id,
        target_type="api_client",
        target_id=client.id,
        data=({"invitations_withdrawn": withdrawn} if withdrawn else {})
        | members.clients_kept(made),
    )


async def _caller_and_client(
    session: AsyncSession, access: TenantAccess, id: uuid.UUID
) -> tuple[TenantAccess, ApiClient | None]:
    """The caller as they stand now, held (``members.access_now``), and the client ``id``
    locked for update. A client revoking a client locks the two in the order of their ids:
    two clients revoking each other at once each held itself and waited for the other."""
    caller = access.principal
    if isinstance(caller, ClientPrincipal) and id <= caller.client.id:
        client = await auth_repository.lock_client(session, access.tenant.id, id)
        return await members.access_now(session, access, Scope.clients_write), client
    access = await members.access_now(session, access, Scope.clients_write)
    return access, await auth_repository.lock_client(session, access.tenant.id, id)
