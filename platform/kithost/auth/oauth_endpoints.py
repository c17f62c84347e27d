"""Kithost's OAuth 2.0 authorization server over HTTP: the token endpoint (RFC 6749, client
credentials only), the JWKS that verifies its tokens and the RFC 8414 metadata.

The token endpoint answers errors in OAuth's own format (RFC 6749 §5.2), which is what
OAuth client libraries parse, rather than as problem documents.
"""

from __future__ import annotations

import base64
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kithost.auth import oauth, signing
from kithost.auth.scopes import Scope
from kithost.db import DbSession
from kithost.state import AppSecretBox, AppSettings

router = APIRouter(tags=["oauth"])

TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path)
JWKS_PATH = "/.well-known/jwks.json"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 32
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PUBLIC = {"Cache-Control": "public, max-age=300"}


class TokenRequest(BaseModel):
    """The token endpoint's form; an empty parameter counts as absent (RFC 6749 §3.2)."""

    grant_type: str | None = Field(None, description="Required: client_credentials.")
    scope: str | None = Field(None, description="Space-separated; default: all the client's.")
    client_id: str | None = Field(None, description="client_secret_post (with Basic: the same).")
    client_secret: str | None = Field(None, description="With client_secret_post only.")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (the scheme)
    expires_in: int
    scope: str


class OAuthErrorResponse(BaseModel):
    """An RFC 6749 §5.2 error."""

    error: str
    error_description: str | None = None


class Jwks(BaseModel):
    keys: list[dict[str, Any]]


class ServerMetadata(BaseModel):
    """RFC 8414 authorization server metadata."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    scopes_supported: list[str]
    response_types_supported: list[str]


@router.post(
    TOKEN_PATH,
    summary="Get an access token with the client credentials grant",
    response_model=TokenResponse,
    responses={
        400: {"model": OAuthErrorResponse, "description": "The request is not valid"},
        401: {"model": OAuthErrorResponse, "description": "Client authentication failed"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM: {"schema": TokenRequest.model_json_schema()}},
        }
    },
)
async def token(
    request: Request, session: DbSession, settings: AppSettings, box: AppSecretBox
) -> JSONResponse:
    try:
        form = await _token_request(request)
        issued = await oauth.client_credentials_grant(
            session,
            settings,
            box,
            _client_credentials(request, form),
            grant_type=form.grant_type,
            scope=form.scope,
        )
    except oauth.OAuthError as exc:
        error = OAuthErrorResponse(error=exc.code, error_description=exc.detail)
        return JSONResponse(
            error.model_dump(exclude_none=True), exc.status, headers={**NO_STORE, **exc.headers}
        )
    body = TokenResponse(
        access_token=issued.token, expires_in=issued.expires_in, scope=" ".join(issued.scopes)
    )
    return JSONResponse(body.model_dump(), headers=NO_STORE)


@router.get(JWKS_PATH, summary="The public keys that verify Kithost's tokens")
async def jwks(session: DbSession, box: AppSecretBox, response: Response) -> Jwks:
    # Create the first key if need be: an empty set, once cached, would refuse its tokens.
    await signing.current_key(session, box)
    response.headers.update(PUBLIC)
    return Jwks.model_validate(signing.jwks(await signing.published_keys(session)))


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="Authorization server metadata (RFC 8414)",
)
async def metadata(settings: AppSettings, response: Response) -> ServerMetadata:
    response.headers.update(PUBLIC)
    return ServerMetadata(
        issuer=settings.base_url,
        token_endpoint=settings.base_url + TOKEN_PATH,
        jwks_uri=settings.base_url + JWKS_PATH,
        grant_types_supported=[oauth.CLIENT_CREDENTIALS],
        token_endpoint_auth_methods_supported=list(oauth.AUTH_METHODS),
        scopes_supported=[s.value for s in Scope],
        response_types_supported=[],
    )


def _invalid_request(detail: str) -> oauth.OAuthError:
    return oauth.OAuthError(detail, code="invalid_request")


async def _token_request(request: Request) -> TokenRequest:
    media_type = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if media_type != FORM:
        raise _invalid_request(f"Send the parameters as {FORM}.")
    try:
        pairs = parse_qsl(
            (await request.body()).decode(), errors="strict", max_num_fields=MAX_FORM_FIELDS
        )
    except ValueError as exc:  # not UTF-8, or too many fields
        raise _invalid_request("The form is malformed.") from exc
    names = [name for name, _ in pairs]
    repeated = [name for name in TokenRequest.model_fields if names.count(name) > 1]
    if repeated:
        raise _invalid_request(f"Repeated parameter: {' '.join(repeated)}.")
    return TokenRequest.model_validate(dict(pairs))


def _client_credentials(request: Request, form: TokenRequest) -> oauth.ClientCredentials:
    """The credentials of client_secret_basic or client_secret_post: one, never both."""
    authorization = request.headers.get("Authorization")
    if authorization is None:
        if form.client_id is None or form.client_secret is None:
            raise oauth.InvalidClient("Authenticate the client with HTTP Basic or form fields.")
        return oauth.ClientCredentials(form.client_id, form.client_secret)
    if form.client_secret is not None:
        raise _invalid_request("Use one client authentication method, not two.")
    credentials = _basic_credentials(authorization)
    if form.client_id not in (None, credentials.client_id):
        raise _invalid_request("The client_id parameter contradicts the Authorization header.")
    return credentials


def _basic_credentials(authorization: str) -> oauth.ClientCredentials:
    """HTTP Basic, with id and secret form-urlencoded before (RFC 6749 §2.3.1)."""
    scheme, _, encoded = authorization.partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except ValueError:  # not base64, or not UTF-8
        decoded = ""
    client_id, colon, secret = decoded.partition(":")
    if scheme.lower() != "basic" or not colon:
        raise oauth.InvalidClient("Send the client credentials with HTTP Basic authentication.")
    return oauth.ClientCredentials(unquote_plus(client_id), unquote_plus(secret))
