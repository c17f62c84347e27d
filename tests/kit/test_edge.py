"""Production edge settings: X-Forwarded-* believed only from trusted proxies (so neither
rate limits nor recorded addresses follow a spoofed header), and allowed host names."""

from __future__ import annotations

import httpx2
import pytest
from fastapi import FastAPI, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.models import DashboardSession
from kithost.settings import Settings
from kithost.users.service import FAILURES_PER_ACCOUNT
from tests.auth.helpers import client_at
from tests.conftest import create_test_app
from tests.factories import PASSWORD, make_user

LOGIN = "/api/v1/auth/login"
PROXY = "10.0.3.4"
VISITOR = "198.51.100.7"


def with_whoami(app: FastAPI) -> FastAPI:
    """``app`` plus a route telling the client address and scheme it saw."""

    async def whoami(request: Request) -> dict[str, str]:
        return {
            "client": request.client.host if request.client else "",
            "scheme": request.url.scheme,
        }

    app.add_api_route("/whoami", whoami)
    return app


async def test_forwarded_headers_only_from_trusted_proxies(
    settings: Settings, connection: AsyncConnection
) -> None:
    app = with_whoami(create_test_app(settings, connection, trusted_proxies="10.0.0.0/16"))
    forwarded = {"X-Forwarded-For": f"203.0.113.9, {VISITOR}", "X-Forwarded-Proto": "https"}
    async with client_at(app, PROXY) as client:
        seen = (await client.get("/whoami", headers=forwarded)).json()
    # The right-most address the trusted proxy did not add is the client.
    assert seen == {"client": VISITOR, "scheme": "https"}
    async with client_at(app, "10.1.0.1") as client:
        seen = (await client.get("/whoami", headers=forwarded)).json()
    assert seen == {"client": "10.1.0.1", "scheme": "http"}

    default = with_whoami(create_test_app(settings, connection))
    async with client_at(default, "127.0.0.1") as client:
        seen = (await client.get("/whoami", headers=forwarded)).json()
    assert seen == {"client": "127.0.0.1", "scheme": "http"}


@pytest.mark.parametrize("trusted", [False, True])
async def test_rate_limits_and_sessions_see_the_real_client(
    settings: Settings, connection: AsyncConnection, db: AsyncSession, trusted: bool
) -> None:
    user = await make_user(db)
    app = create_test_app(settings, connection, trusted_proxies=PROXY if trusted else "")
    wrong = {"email": user.email, "password": "not the password"}
    async with client_at(app, PROXY) as client:
        right = {"email": user.email, "password": PASSWORD}
        signed_in = await client.post(LOGIN, json=right, headers={"X-Forwarded-For": VISITOR})
        assert signed_in.status_code == 200
        for attempt in range(FAILURES_PER_ACCOUNT + 1):
            spoofed = {"X-Forwarded-For": f"192.0.2.{attempt + 1}"}
            response = await client.post(LOGIN, json=wrong, headers=spoofed)
    # Each attempt claims a new address: only a trusted proxy's claim counts.
    expected = (401, "invalid_credentials") if trusted else (429, "rate_limited")
    assert (response.status_code, response.json()["code"]) == expected
    recorded = await db.scalar(
        select(DashboardSession.ip).where(DashboardSession.user_id == user.id)
    )
    assert recorded == (VISITOR if trusted else PROXY)


async def test_unknown_hosts_are_refused(settings: Settings, connection: AsyncConnection) -> None:
    app = create_test_app(settings, connection, allowed_hosts="kithost.example, *.chat.example")
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://kithost.example") as client:
        for host in ("kithost.example", "KITHOST.example:8443", "eu.chat.example"):
            response = await client.get("/api/v1/openapi.json", headers={"Host": host})
            assert response.status_code == 200, host
        for host in ("evil.example", "chat.example", "kithost.example.evil", ""):
            refused = await client.get("/api/v1/openapi.json", headers={"Host": host})
            assert refused.status_code == 400, host
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == "invalid_host"
            assert refused.headers["x-request-id"]
        # The kubelet probes pods by address.
        probe = await client.get("/healthz", headers={"Host": "10.0.3.4:8000"})
        assert probe.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_answer_by_address_only(
    settings: Settings, connection: AsyncConnection, path: str
) -> None:
    """The kubelet calls the pod by its address; an Ingress (or any proxy) forwards a public
    name, under which the probes are 404: routing ``/`` to the app publishes neither."""
    app = create_test_app(settings, connection, allowed_hosts="kithost.example, *.chat.example")
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://kithost.example") as client:
        for host in ("kithost.example", "KITHOST.example:443", "eu.chat.example"):
            hidden = await client.get(path, headers={"Host": host})
            assert hidden.status_code == 404, host
            assert hidden.headers["content-type"] == "application/problem+json"
            assert hidden.json()["code"] == "not_found"
        for host in ("10.0.3.4:8000", "[fd00::4]:8000", ""):
            probe = await client.get(path, headers={"Host": host})
            assert probe.status_code == 200, (host, probe.text)


def test_trusted_proxies_must_be_addresses() -> None:
    assert Settings(trusted_proxies="10.0.0.0/8, 192.168.1.1,::1").trusted_proxy_list == [
        "10.0.0.0/8",
        "192.168.1.1",
        "::1",
    ]
    with pytest.raises(ValidationError, match="'ingress' is not an IP address or CIDR"):
        Settings(trusted_proxies="10.0.0.0/8,ingress")
