from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth.scopes import Scope
from kithost.errors import invalid_field
from kithost.kit.tokens import hash_secret, random_token
from kithost.models import ApiClient, Tenant


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
    session: AsyncSession, actor: audit.Actor, tenant: Tenant, *, name: str, scopes: list[Scope]
) -> NewClient:
    secret = random_token("ks_", 32)
    client = ApiClient(
        tenant_id=tenant.id,
        name=name,
        client_id=random_token("kc_", 16),
        secret_hash=hash_secret(secret),
        scopes=[s.value for s in scopes],
    )
    session.add(client)
    await session.flush()
    audit.record(
        session,
        actor,
        "client.created",
        tenant_id=tenant.id,
        target_type="api_client",
        target_id=client.id,
        data={"scopes": client.scopes},
    )
    return NewClient(client, secret)
