"""Dashboard single sign-on with an OpenID Connect provider, through Authlib's Starlette
client: the authorization code flow with PKCE (S256), ``state`` and ``nonce``.

Enabled when ``KITHOST_OIDC_DISCOVERY_URL`` and ``KITHOST_OIDC_CLIENT_ID`` are set (the
secret too for a confidential client). Authlib keeps the flow's state, nonce and PKCE
verifier in Starlette's session: the short-lived, signed ``kithost_oidc`` cookie, which
only the ``/api/v1/auth/oidc`` routes receive. Every failure of the dance is a problem
response with its own code, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import httpx2
from authlib.integrations.base_client.errors import (  # type: ignore[import-untyped]
    MismatchingStateError,
)
from authlib.integrations.starlette_client import (  # type: ignore[import-untyped]
    OAuth,
    OAuthError,
    StarletteOAuth2App,
)
from fastapi import Depends, Request
from joserfc.errors import JoseError
from starlette.responses import Response

from kithost.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from kithost.settings import Settings
from kithost.state import app_state

SESSION_COOKIE = "kithost_oidc"
SESSION_PATH = "/api/v1/auth/oidc"
SESSION_MAX_AGE_SECONDS = 10 * 60
"""How long a user may take at the provider before the sign-in attempt expires."""
SCOPE = "openid email profile"
PROVIDER_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in: an email it verified, and a display name."""

    email: str
    name: str


def create_client(settings: Settings) -> StarletteOAuth2App | None:
    """The provider's client, or None when single sign-on is not configured."""
    if not (settings.oidc_discovery_url and settings.oidc_client_id):
        return None
    secret = settings.oidc_client_secret
    return OAuth().register(
        "kithost",
        server_metadata_url=settings.oidc_discovery_url,
        client_id=settings.oidc_client_id,
        client_secret=secret.get_secret_value() if secret is not None else None,
        client_kwargs={
            "scope": SCOPE,
            "code_challenge_method": "S256",
            "timeout": PROVIDER_TIMEOUT_SECONDS,
        },
    )


async def _client(request: Request) -> StarletteOAuth2App:
    client = app_state(request).oidc
    if client is None:
        raise NotFound("Single sign-on is not configured.", code="oidc_disabled")
    return client


OidcClient = Annotated[StarletteOAuth2App, Depends(_client)]


@contextmanager
def _provider_errors() -> Iterator[None]:
    try:
        yield
    except MismatchingStateError as exc:
        raise BadRequest(
            "This sign-in attempt expired or was started in another browser; sign in again.",
            code="oidc_state_mismatch",
        ) from exc
    except OAuthError as exc:
        raise BadRequest(
            f"The identity provider refused the sign-in ({exc.error}: {exc.description}).",
            code="oidc_provider_error",
        ) from exc
    except JoseError as exc:
        raise BadRequest(
            f"The identity provider's ID token is not valid ({exc.error}).",
            code="oidc_invalid_id_token",
        ) from exc
    except httpx2.HTTPError as exc:
        raise ServiceUnavailable(
            "The identity provider is unreachable.", code="oidc_unavailable"
        ) from exc


async def redirect_to_provider(
    client: StarletteOAuth2App, request: Request, redirect_uri: str
) -> Response:
    """Send the user to the provider, remembering state, nonce and PKCE verifier."""
    with _provider_errors():
        response: Response = await client.authorize_redirect(request, redirect_uri)
    return response


async def verified_identity(client: StarletteOAuth2App, request: Request) -> Identity:
    """Finish the flow at the callback: check ``state``, redeem the code with the PKCE
    verifier, validate the ID token (signature, issuer, audience, nonce) and insist on a
    verified email."""
    with _provider_errors():
        token = await client.authorize_access_token(request)
    claims = token.get("userinfo")
    if not claims:
        raise BadRequest("The identity provider sent no ID token.", code="oidc_invalid_id_token")
    if claims.get("email_verified") is not True or not claims.get("email"):
        raise Forbidden(
            "The identity provider has not verified your email address.",
            code="email_not_verified",
        )
    return Identity(str(claims["email"]), str(claims.get("name") or ""))
