"""Access tokens for API clients (OAuth 2.0 client credentials)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import signing
from kithost.auth.scopes import Scope
from kithost.kit.crypto import SecretBox
from kithost.models import ApiClient
from kithost.settings import Settings

API_AUDIENCE = "kithost:api"


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
