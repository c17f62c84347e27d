"""What an actor may do in a tenant now, for what was handed to them earlier and is used
later without their credentials (a preview key, a conversation export's download link):
such a thing carries its actor (:func:`actor_text`) and is good only while that actor
still holds the scope it needed (:func:`scopes_now`), so it ends with their removal, a
lower role, a revoked client or a tenant setting that takes a scope away."""

from __future__ import annotations

import base64
import binascii
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.auth import repository
from kithost.auth.principals import Actor
from kithost.auth.roles import ALL_SCOPES, scopes_of
from kithost.auth.scopes import Scope
from kithost.models import Tenant, User

NONE: frozenset[Scope] = frozenset()
_SCOPES = frozenset(s.value for s in Scope)


def actor_text(actor: Actor) -> str:
    """``actor`` as base64url of ``type:id`` (no dots: it fits a signed payload's field)."""
    return base64.urlsafe_b64encode(f"{actor.type}:{actor.id or ''}".encode()).decode()


def actor_of(text: str) -> Actor:
    """The actor :func:`actor_text` wrote; ``ValueError`` when ``text`` is not one."""
    try:
        actor_type, _, actor_id = base64.urlsafe_b64decode(text).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not an actor") from exc
    return Actor(actor_type, actor_id or None)


async def scopes_now(session: AsyncSession, tenant_id: uuid.UUID, actor: Actor) -> frozenset[Scope]:
    """The scopes ``actor`` holds in ``tenant_id`` now, as a request of theirs would get
    them (``auth.dependencies``): a user's role there (every scope for an active platform
    admin), an API client's own scopes while it is not revoked; none for anyone else.
    ``session`` is scoped to ``tenant_id`` (``rls``), and stays so."""
    if actor.type == "user" and actor.id is not None:
        try:
            user_id = uuid.UUID(actor.id)
        except ValueError:
            return NONE
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            return NONE
        if user.is_platform_admin:
            return ALL_SCOPES
        membership = await repository.membership(session, tenant_id, user_id)
        tenant = await session.get(Tenant, tenant_id)
        if membership is None or tenant is None:
            return NONE
        return scopes_of(membership.role, tenant)
    if actor.type == "client" and actor.id is not None:
        client = await repository.client_by_client_id(session, actor.id)
        if client is None or client.tenant_id != tenant_id:
            await rls.set_tenant(session, tenant_id)  # the lookup scoped it to the client's
            return NONE
        if client.revoked_at is not None:
            return NONE
        return frozenset(Scope(s) for s in client.scopes if s in _SCOPES)
    return NONE
