"""Authentication and tenant authorization, declared in route signatures.

Routes ask for a :class:`~kithost.auth.principals.TenantAccess` with the scope they need
(``access: MembersRead``); the dependency resolves the ``{tenant}`` path parameter, and
answers 401 without credentials, 404 when the principal has no access to that tenant
(indistinguishable from a tenant that does not exist) and 403 when it lacks the scope.
Scopes appear in the OpenAPI document through the OAuth 2.0 security scheme.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyCookie, OAuth2, SecurityScopes
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.auth import cookies, repository, signing
from kithost.auth.oauth import API_AUDIENCE
from kithost.auth.principals import ClientPrincipal, Principal, TenantAccess, UserPrincipal
from kithost.auth.roles import ALL_SCOPES, scopes_of
from kithost.auth.scopes import Scope
from kithost.db import DbSession
from kithost.errors import Forbidden, NotFound, Unauthorized
from kithost.models import Tenant
from kithost.state import AppSettings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/oauth/token", scopes={s.value: s.name for s in Scope}
        )
    ),
    scheme_name="client_credentials",
    auto_error=False,
)
sign_in_cookie = APIKeyCookie(
    name=cookies.SIGN_IN_COOKIE, scheme_name="dashboard_session", auto_error=False
)


def _invalid_token(detail: str) -> Unauthorized:
    return Unauthorized(
        detail, code="invalid_token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


async def _client_principal(
    session: AsyncSession, settings: AppSettings, token: str
) -> ClientPrincipal:
    try:
        claims = await signing.verify(
            session, token, issuer=settings.base_url, audience=API_AUDIENCE
        )
    except signing.InvalidToken as exc:
        raise _invalid_token("The access token is not valid.") from exc
    client = await repository.client_by_client_id(session, str(claims["sub"]))
    if (
        client is None
        or client.revoked_at is not None
        or str(client.tenant_id) != claims.get("tenant")
    ):
        raise _invalid_token("The access token's client is revoked.")
    granted = {s for s in str(claims.get("scope", "")).split() if s in client.scopes}
    return ClientPrincipal(client, frozenset(Scope(s) for s in granted))


async def get_principal(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    authorization: Annotated[str | None, Depends(oauth2)],
    cookie: Annotated[str | None, Depends(sign_in_cookie)],
) -> Principal | None:
    """The caller: an API client (Bearer token) or a dashboard user (session cookie)."""
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _invalid_token("Use an OAuth 2.0 Bearer access token.")
        return await _client_principal(session, settings, token.strip())
    return await get_signed_in_user(request, session, settings, cookie)


async def get_signed_in_user(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    cookie: Annotated[str | None, Depends(sign_in_cookie)],
) -> UserPrincipal | None:
    """The dashboard user of the sign-in cookie, while its dashboard session is live (not
    expired, not revoked, its user active); a write must echo the cookie's CSRF token."""
    if cookie is None:
        return None
    found = await cookies.resolve(session, settings, cookie)
    if found is None:
        return None
    record, user = found
    if request.method not in SAFE_METHODS and not cookies.csrf_matches(
        settings, cookie, request.headers.get(cookies.CSRF_HEADER)
    ):
        raise Forbidden("Missing or wrong X-CSRF-Token header.", code="csrf_failed")
    return UserPrincipal(user, record.id)


OptionalPrincipal = Annotated[Principal | None, Depends(get_principal)]
OptionalUser = Annotated[UserPrincipal | None, Depends(get_signed_in_user)]
"""The dashboard user of the sign-in cookie, or None: a Bearer token is not looked at."""


async def require_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise Unauthorized("Sign in or send an access token.", code="unauthenticated")
    return principal


async def require_user(principal: OptionalPrincipal) -> UserPrincipal:
    if not isinstance(principal, UserPrincipal):
        raise Unauthorized("Sign in to the dashboard.", code="unauthenticated")
    return principal


CurrentUser = Annotated[UserPrincipal, Depends(require_user)]


async def require_platform_admin(user: CurrentUser) -> UserPrincipal:
    if not user.user.is_platform_admin:
        raise Forbidden("Only platform admins may do this.", code="not_platform_admin")
    return user


PlatformAdmin = Annotated[UserPrincipal, Depends(require_platform_admin)]


async def tenant_access(
    security_scopes: SecurityScopes,
    tenant: str,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_principal)],
) -> TenantAccess:
    """The principal's access to the ``{tenant}`` of the path, holding the route's scopes."""
    found = await repository.tenant_by_slug(session, tenant)
    if found is not None:
        await rls.set_tenant(session, found.id)
    access = None if found is None else await _access(session, found, principal)
    if access is None:
        raise NotFound(f"No tenant {tenant!r}.", code="tenant_not_found")
    missing = sorted(set(security_scopes.scopes) - access.scopes)
    if missing:
        raise Forbidden(f"Missing scope: {' '.join(missing)}.", code="insufficient_scope")
    return access


async def _access(
    session: AsyncSession, tenant: Tenant, principal: Principal
) -> TenantAccess | None:
    if isinstance(principal, ClientPrincipal):
        if principal.client.tenant_id != tenant.id:
            return None
        return TenantAccess(tenant, principal, principal.scopes, None)
    if principal.user.is_platform_admin:
        return TenantAccess(tenant, principal, ALL_SCOPES, None)
    membership = await repository.membership(session, tenant.id, principal.user.id)
    if membership is None:
        return None
    return TenantAccess(tenant, principal, scopes_of(membership.role, tenant), membership.role)


def _requiring(scope: Scope) -> object:
    return Security(tenant_access, scopes=[scope.value])


WidgetsRead = Annotated[TenantAccess, _requiring(Scope.widgets_read)]
WidgetsWrite = Annotated[TenantAccess, _requiring(Scope.widgets_write)]
SessionsMint = Annotated[TenantAccess, _requiring(Scope.sessions_mint)]
AnalyticsRead = Annotated[TenantAccess, _requiring(Scope.analytics_read)]
MembersRead = Annotated[TenantAccess, _requiring(Scope.members_read)]
MembersWrite = Annotated[TenantAccess, _requiring(Scope.members_write)]
ClientsWrite = Annotated[TenantAccess, _requiring(Scope.clients_write)]
KnowledgeRead = Annotated[TenantAccess, _requiring(Scope.knowledge_read)]
KnowledgeWrite = Annotated[TenantAccess, _requiring(Scope.knowledge_write)]
ConversationsRead = Annotated[TenantAccess, _requiring(Scope.conversations_read)]
ConversationsWrite = Annotated[TenantAccess, _requiring(Scope.conversations_write)]
WebhooksWrite = Annotated[TenantAccess, _requiring(Scope.webhooks_write)]
EndUserDataWrite = Annotated[
    TenantAccess,
    Security(tenant_access, scopes=[Scope.members_write.value, Scope.conversations_write.value]),
]
"""Erasing an end user's data or setting how long it is kept: ``members:write``, and
``conversations:write`` since it deletes chat threads and their files."""
AnyTenantAccess = Annotated[TenantAccess, Security(tenant_access)]
