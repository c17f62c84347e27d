"""What the auth tests share: the OAuth endpoints and a backend client of a tenant, a client
at a given IP, and a Redis rate limiter of a test's own."""

from __future__ import annotations

import base64
import secrets

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.clients.service import NewClient, create_client
from kithost.kit.ratelimit import RedisRateLimiter
from kithost.models import Tenant
from tests.conftest import REDIS_URL

TOKEN_URL = "/oauth/token"
JWKS_URL = "/.well-known/jwks.json"
GRANT = {"grant_type": "client_credentials"}
ME = "/api/v1/auth/me"


async def make_backend(db: AsyncSession, tenant: Tenant, name: str = "backend") -> NewClient:
    """An API client of ``tenant`` holding widgets:read and sessions:mint."""
    return await create_client(
        db, CLI, tenant, name=name, scopes=[Scope.widgets_read, Scope.sessions_mint]
    )


def basic(client_id: str, secret: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def client_at(app: FastAPI, ip: str) -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=app, client=(ip, 50000), raise_app_exceptions=False)
    return httpx2.AsyncClient(transport=transport, base_url="http://testserver")


def redis_limiter() -> RedisRateLimiter:
    """Redis with a key prefix of this limiter's own, so parallel runs never share counts."""
    return RedisRateLimiter(REDIS_URL, prefix=f"kithost-test-{secrets.token_hex(6)}:")
