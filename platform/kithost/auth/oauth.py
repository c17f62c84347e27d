"""Kithost as an OAuth 2.0 authorization server for tenant backends: the client credentials
grant (RFC 6749 §4.4) and the access tokens it issues.

Errors are :class:`OAuthError`: the token endpoint renders them as RFC 6749 §5.2 requires
(``{"error", "error_description"}``), not as problem documents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import repository, signing
from kithost.auth.scopes import Scope
from kithost.errors import KithostError
from kithost.kit.crypto import SecretBox
from kithost.kit.tokens import secret_matches
from kithost.models import ApiClient
from kithost.models.base import utcnow
from kithost.settings import Settings

log = structlog.get_logger(__name__)

API_AUDIENCE = "kithost:api"
CLIENT_CREDENTIALS = "client_credentials"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class OAuthError(KithostError):
    """An RFC 6749 §5.2 error; ``code`` is its ``error`` and ``detail`` its description
    (plain ASCII without quotes or backslashes, as §5.2 allows)."""

    status = 400


class InvalidClient(OAuthError):
    """Client authentication failed; the challenge names the scheme the client may use."""

    status, code = 401, "invalid_client"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Basic realm="kithost"'})


@dataclass(frozen=True)
class ClientCredentials:
    """What a client presented to authenticate, whichever way it was sent."""

    client_id: str
    secret: str


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    scopes: list[Scope]


async def issue_access_token(
    session: AsyncSession,
    settings: Settings,
    box: SecretBox,
    client: ApiClient,
    scopes: Iterable[Scope],
) -> str:
    """A JWT for ``client`` with ``scopes`` (already checked against the client's own)."""
    claims = {
        "iss": settings.base_url,
        "aud": API_AUDIENCE,
        "sub": client.client_id,
        "tenant": str(client.tenant_id),
        "scope": " ".join(sorted(s.value for s in scopes)),
    }
    return await signing.sign(session, box, claims, settings.access_token_ttl_seconds)


async def client_credentials_grant(
    session: AsyncSession,
    settings: Settings,
    box: SecretBox,
    credentials: ClientCredentials,
    *,
    grant_type: str | None,
    scope: str | None,
) -> AccessToken:
    """An access token for the client ``credentials`` authenticate, with the ``scope``
    requested (space-separated; all of the client's when None)."""
    if grant_type is None:
        raise OAuthError("The grant_type parameter is required.", code="invalid_request")
    if grant_type != CLIENT_CREDENTIALS:
        raise OAuthError(
            f"Only the {CLIENT_CREDENTIALS} grant is supported.", code="unsupported_grant_type"
        )
    client = await authenticate_client(session, credentials)
    scopes = _granted_scopes(client, scope)
    token = await issue_access_token(session, settings, box, client, scopes)
    client.last_used_at = utcnow()
    log.info("oauth_token_issued", client_id=client.client_id, scope=" ".join(scopes))
    return AccessToken(token, settings.access_token_ttl_seconds, scopes)


async def authenticate_client(session: AsyncSession, credentials: ClientCredentials) -> ApiClient:
    """The live client whose secret ``credentials`` hold; :class:`InvalidClient` otherwise."""
    client = await repository.client_by_client_id(session, credentials.client_id)
    if client is None:
        reason = "unknown_client"
    elif not secret_matches(credentials.secret, client.secret_hash):
        reason = "wrong_secret"
    elif client.revoked_at is not None:
        reason = "revoked"
    else:
        return client
    # Log only ids Kithost knows: a client that swapped its id and secret sent the secret.
    known_id = None if client is None else client.client_id
    log.warning("oauth_client_authentication_failed", client_id=known_id, reason=reason)
    if reason == "revoked":
        raise InvalidClient("The client is revoked.")
    raise InvalidClient("Unknown client or wrong client secret.")


def _granted_scopes(client: ApiClient, scope: str | None) -> list[Scope]:
    """The scopes requested, each one the client holds. Only spaces separate them (RFC 6749
    §3.3): ``str.split()`` also split on tabs and Unicode spaces (U+00A0, U+3000), so a
    string that names no scope of the grammar was granted as if it listed two."""
    held = sorted(Scope(s) for s in client.scopes)
    if scope is None:
        return held
    requested = set(scope.split(" ")) - {""}
    if not requested or not requested <= set(held):
        # Never echo the request: §5.2 limits error_description to a few ASCII characters.
        raise OAuthError(
            f"Request a subset of the client's scopes: {' '.join(held)}.", code="invalid_scope"
        )
    return sorted(Scope(s) for s in requested)
