"""After a full scenario through the HTTP API, no table holds a secret in plaintext and no
log line carries one: passwords, OpenAI keys (the platform's, a tenant's, a widget's model key),
identity secrets, client secrets, access and session tokens, invitation tokens, tool secrets,
webhook signing secrets (first and rotated). Runs on PostgreSQL and SQLite (every column of every
table), logs captured from the stdlib handler structlog writes through."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kithost.auth import cookies
from kithost.auth.principals import CLI
from kithost.models import Base, Role
from kithost.settings import Settings
from kithost.widgets.service import create_widget, publish_draft
from tests.auth.helpers import GRANT, TOKEN_URL, basic
from tests.factories import PASSWORD, login, make_member, make_tenant, set_draft
from tests.fakes.openai_server import FakeOpenAI
from tests.sessions.helpers import (
    DEVICE,
    HOSTED,
    SHOP,
    Published,
    create_hosted_app,
    mint,
)

TENANT_KEY = "sk-tenant-" + "q" * 40
MODEL_KEY = "sk-model-" + "m" * 40


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection, fake_openai: FakeOpenAI) -> FastAPI:
    return create_hosted_app(settings, connection, fake_openai)


async def scenario(app: FastAPI, client: httpx2.AsyncClient) -> dict[str, str]:
    """Every secret the scenario makes or uses, by what it is."""
    async with app.state.sessionmaker() as setup:
        tenant = await make_tenant(setup)
        owner = await make_member(setup, tenant, Role.owner)
        widgets = []
        for config in (HOSTED, None):
            widget = await create_widget(setup, CLI, tenant, name="w", origins=[SHOP])
            if config is not None:
                set_draft(widget, config)
            await publish_draft(setup, CLI, widget, published_by=None)
            widgets.append(Published(tenant, widget))
        hosted, self_hosted = widgets
        await setup.commit()
    platform_key = app.state.settings.openai_api_key.get_secret_value()
    found = {"password": PASSWORD, "platform key": platform_key}
    signed_in = await client.post(
        "/api/v1/auth/login", json={"email": owner.email, "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
    found["dashboard cookie"] = signed_in.cookies[cookies.SIGN_IN_COOKIE]
    async with app.state.sessionmaker() as db:
        creds = (await login(app, db, owner)).headers
        await db.commit()
    prefix = f"/api/v1/tenants/{tenant.slug}"

    async def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await client.request(method, prefix + path, json=body, headers=creds)
        assert response.is_success, response.text
        return response.json()

    # Sessions: hosted (the platform key) and self-hosted, anonymous and backend-minted.
    hosted_mint = await mint(client, hosted, {"device_id": DEVICE})
    assert hosted_mint.status_code == 200, hosted_mint.text
    found["hosted client secret"] = hosted_mint.json()["client_secret"]
    self_mint = await mint(client, self_hosted, {"device_id": DEVICE})
    found["session token"] = self_mint.json()["token"]
    await call("PUT", "/openai-key", {"api_key": TENANT_KEY})
    found["tenant key"] = TENANT_KEY
    identity = f"/widgets/{self_hosted.widget.id}/identity-secret"
    found["first identity secret"] = (await call("POST", identity))["identity_secret"]
    found["identity secret"] = (await call("POST", identity))["identity_secret"]
    vouched = pyjwt.encode(
        {"sub": "42", "exp": int(time.time()) + 600}, found["identity secret"], "HS256"
    )
    found["identity token"] = vouched
    verified = await mint(client, self_hosted, {"identity_token": vouched})
    found["verified session token"] = verified.json()["token"]
    made = await call("POST", "/clients", {"name": "backend", "scopes": ["sessions:mint"]})
    found["client secret"] = made["client_secret"]
    token = await client.post(
        TOKEN_URL, data=GRANT, headers=basic(made["client"]["client_id"], made["client_secret"])
    )
    found["access token"] = token.json()["access_token"]
    invited = await call("POST", "/invitations", {"email": "new@example.test", "role": "viewer"})
    found["invitation token"] = invited["accept_url"].partition("#token=")[2]
    own = f"/widgets/{self_hosted.widget.id}"
    await call("PUT", f"{own}/model-key", {"api_key": MODEL_KEY})
    found["model key"] = MODEL_KEY
    found["tool secret"] = (await call("POST", f"{own}/tool-secret"))["tool_secret"]
    hook = await call(
        "POST", "/webhooks", {"url": "https://hooks.example.com/in", "events": ["widget.published"]}
    )
    found["webhook secret"] = hook["secret"]
    rotated = await call("POST", f"/webhooks/{hook['endpoint']['id']}/rotate-secret")
    found["rotated webhook secret"] = rotated["secret"]
    tool = {"type": "mcp", "id": "orders", "url": "https://mcp.example.com/mcp"}
    draft = {"agent": {"tools": [{**tool, "allowed_tools": ["add"]}]}}
    revision = (await call("GET", own))["revision"]
    saved = await client.put(
        f"{prefix}{own}/config", json=draft, headers={**creds, "If-Match": f'"{revision}"'}
    )
    assert saved.status_code == 200, saved.text
    found["mcp secret"] = "Bearer mcp-" + "s" * 30
    await call("PUT", f"{own}/mcp-secrets/orders", {"value": found["mcp secret"]})
    return {what: value for what, value in found.items() if value}


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


async def test_no_secret_in_the_database_or_the_logs(
    app: FastAPI, connection: AsyncConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        found = await scenario(app, client)
    assert {"password", "tenant key", "identity secret", "client secret", "model key"} <= set(found)
    assert {"tool secret", "webhook secret", "rotated webhook secret"} <= set(found)

    leaks, scanned = [], 0
    for table in Base.metadata.sorted_tables:
        for row in (await connection.execute(select(table))).mappings():
            for column, value in row.items():
                cell = _text(value)
                scanned += len(cell)
                leaks += [
                    f"{table.name}.{column}: {what}" for what, s in found.items() if s in cell
                ]
    logged = caplog.text + "".join(_text(r.msg) for r in caplog.records)
    assert scanned > 1000  # the dump and the logs hold the scenario
    assert caplog.records
    leaks += [f"logs: {what}" for what, secret in found.items() if secret in logged]
    assert not leaks, leaks
