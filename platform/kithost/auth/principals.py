"""Who is calling, settled once per request by :mod:`kithost.auth.dependencies`, and who
acted, as the audit log records it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from kithost.auth.scopes import Scope
from kithost.models import ApiClient, Role, Tenant, User


@dataclass(frozen=True)
class Actor:
    """Who acted: a dashboard user, an API client, the CLI or the system itself."""

    type: str
    id: str | None = None


CLI = Actor("cli")
SYSTEM = Actor("system")


@dataclass(frozen=True)
class UserPrincipal:
    """A dashboard user signed in with the sign-in cookie of a dashboard session."""

    user: User
    dashboard_session_id: uuid.UUID

    @property
    def actor(self) -> Actor:
        return Actor("user", str(self.user.id))


@dataclass(frozen=True)
class ClientPrincipal:
    """A tenant backend holding an access token of one API client."""

    client: ApiClient
    scopes: frozenset[Scope]

    @property
    def actor(self) -> Actor:
        return Actor("client", self.client.client_id)


Principal = UserPrincipal | ClientPrincipal


@dataclass(frozen=True)
class TenantAccess:
    """A principal's access to one tenant: what it may do there, and as which role."""

    tenant: Tenant
    principal: Principal
    scopes: frozenset[Scope]
    role: Role | None
    """The member's role; None for platform admins and API clients."""

    @property
    def actor(self) -> Actor:
        return self.principal.actor
