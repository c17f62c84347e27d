"""The role table: what each tenant role may do, in the vocabulary of API scopes.

A dashboard user acting in a tenant holds the scopes of their role there; an API client
holds the scopes granted to it (and of its token). Platform admins hold every scope in
every tenant.

``sessions:mint`` acts as any end user of the tenant's widgets (a session minted for a
user id, or an identity secret that signs for any): it reads their threads, so only the
roles that read conversations anyway hold it.
"""

from __future__ import annotations

from kithost.auth.principals import ClientPrincipal, TenantAccess
from kithost.auth.scopes import Scope
from kithost.models import Role, Tenant

ALL_SCOPES = frozenset(Scope)

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.owner: ALL_SCOPES,
    Role.admin: ALL_SCOPES,
    Role.editor: frozenset(
        {
            Scope.widgets_read,
            Scope.widgets_write,
            Scope.analytics_read,
            Scope.members_read,
            Scope.knowledge_read,
            Scope.knowledge_write,
        }
    ),
    Role.viewer: frozenset({Scope.widgets_read, Scope.analytics_read, Scope.members_read}),
}


RANKED = (Role.viewer, Role.editor, Role.admin, Role.owner)
"""The roles from the least to the most."""


def outranks(role: Role, other: Role) -> bool:
    return RANKED.index(role) > RANKED.index(other)


def scopes_of(role: Role, tenant: Tenant) -> frozenset[Scope]:
    """The scopes of ``role`` in ``tenant``: its row of the table, and ``conversations:read``
    for editors where the tenant lets them read conversations."""
    scopes = ROLE_SCOPES[role]
    if role is Role.editor and tenant.editors_read_conversations:
        return scopes | {Scope.conversations_read}
    return scopes


def acts_as_owner(access: TenantAccess) -> bool:
    """Whether ``access`` is one of the tenant's owners or a platform admin (an API client
    never is, whatever its scopes): who makes or unmakes owners and deletes the tenant."""
    principal = access.principal
    if isinstance(principal, ClientPrincipal):
        return False
    return access.role is Role.owner or principal.user.is_platform_admin


def may_grant(access: TenantAccess, role: Role) -> bool:
    """Whether ``access`` may give or take ``role``: only those who act as owners make or
    unmake owners."""
    return role is not Role.owner or acts_as_owner(access)
