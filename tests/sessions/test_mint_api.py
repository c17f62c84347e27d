"""Session minting over real HTTP (ASGI) with the fake OpenAI server behind hosted widgets."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.analytics.facts import FLUSH_SECONDS, FactBuffer
from kithost.analytics.ingestion.tasks import ingest
from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.kit.tokens import hash_secret
from kithost.models import Role, SessionMint, Widget
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.widgets.service import create_widget
from tests.conftest import config_cache, create_test_app, operator_sessions
from tests.factories import client_token, login, make_member, make_tenant
from tests.fakes.openai_server import FakeOpenAI
from tests.sessions.helpers import DEVICE, HOSTED, SHOP, create_hosted_app, mint, publish
from tests.workers import take_sent_tasks


async def test_anonymous_self_hosted_session(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    target = await publish(db)
    response = await mint(client, target, {"device_id": DEVICE})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["mode"] == "self_hosted"
    assert body["chatkit_url"].endswith(f"/v1/chatkit/{target.widget.public_key}")
    jwks = (await client.get("/.well-known/jwks.json")).json()
    claims = pyjwt.decode(
        body["token"],
        pyjwt.PyJWKSet.from_dict(jwks).keys[0].key,
        algorithms=["ES256"],
        audience=f"kithost:widget:{target.widget.public_key}",
    )
    assert (claims["sub"], claims["origin"], body["end_user"]) == (
        f"a:{DEVICE}",
        SHOP,
        claims["sub"],
    )
    assert claims["exp"] == body["expires_at"]
    assert (await db.execute(select(SessionMint))).scalars().all() == []  # hosted only
    await asyncio.sleep(FLUSH_SECONDS + 0.5)  # the process's fact buffer sends on its own
    sent = take_sent_tasks(app.state.celery, app.state.settings.task_queue, ingest.name)
    [[tenant_id, [fact]]] = [[t, f] for t, w, f in sent if w == str(target.widget.id)]
    assert tenant_id == str(target.tenant.id)
    assert fact["name"] == "server.session.minted"
    assert (fact["end_user"], fact["data"]) == (
        f"a:{DEVICE}",
        {"mode": "self_hosted", "origin": SHOP},
    )


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "https://evil.example.com",
        "null",
        "http://shop.example.com",
        "HTTPS://SHOP.EXAMPLE.COM",  # no browser sends it; /config and /events refuse it too
    ],
)
async def test_foreign_or_missing_origins_are_refused(
    client: httpx2.AsyncClient, db: AsyncSession, origin: str | None
) -> None:
    target = await publish(db)
    for body in ({"device_id": DEVICE}, {"device_id": 7}):  # before the body is looked at
        response = await mint(client, target, body, origin=origin)
        assert (response.status_code, response.json()["code"]) == (403, "origin_not_allowed")
        assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(target.url, headers={"Origin": origin} if origin else {})
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b'{"current": "abc"}', 401, "invalid_session_token", None),
        (b"{}", 422, "validation_failed", "device_id"),
        (b'{"device_id": "anon_short"}', 422, "validation_failed", "device_id"),
        (b'{"device_id": 7}', 422, "validation_failed", "device_id"),
        (b'{"device_id": "anon_dddddddddddddddddddddddd", "extra": 1}', 422, None, "extra"),
        (b"{not json", 422, "validation_failed", None),
    ],
)
async def test_problems_of_an_allowed_page_carry_cors_headers(
    client: httpx2.AsyncClient,
    db: AsyncSession,
    body: bytes,
    status: int,
    code: str | None,
    field: str | None,
) -> None:
    """A page on another origin (direct placement) reads a problem only with CORS headers:
    without them its loader sees a network failure, not the 401 or 422 it must act on."""
    target = await publish(db)
    response = await client.post(
        target.url, content=body, headers={"Origin": SHOP, "Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["vary"] == "Origin"
    assert response.json()["code"] == (code or "validation_failed")
    if field is not None:
        assert response.json()["errors"][0]["field"] == field


async def test_wildcard_origins_and_preflight(client: httpx2.AsyncClient, db: AsyncSession) -> None:
    target = await publish(db)
    assert (
        await mint(client, target, {"device_id": DEVICE}, "https://a.b.example.org")
    ).status_code == 200
    preflight = await client.options(target.url, headers={"Origin": SHOP})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP
    denied = await client.options(target.url, headers={"Origin": "https://evil.test"})
    assert denied.status_code == 403


async def test_identity_tokens(client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession) -> None:
    target = await publish(db, {"require_identity": True})
    secret = "wis_" + "k" * 43
    target.widget.identity_secret = app.state.secret_box.encrypt(secret)
    await db.flush()
    now = int(time.time())

    def sign(claims: dict[str, Any], key: str = secret, alg: str = "HS256") -> str:
        return pyjwt.encode(claims, key, algorithm=alg)

    ok = await mint(client, target, {"identity_token": sign({"sub": "42", "exp": now + 600})})
    assert ok.status_code == 200, ok.text
    # A session (and so every refresh of it) ends when the identity token does.
    assert ok.json()["expires_at"] == now + 600 < now + app.state.settings.session_token_ttl_seconds
    claims = pyjwt.decode(ok.json()["token"], options={"verify_signature": False})
    assert (claims["sub"], claims["idexp"], claims["exp"]) == ("u:42", now + 600, now + 600)
    refreshed = await mint(client, target, {"current": ok.json()["token"]})
    assert refreshed.json()["expires_at"] == now + 600
    refused = {
        "anonymous": {"device_id": DEVICE},
        "expired": {"identity_token": sign({"sub": "42", "exp": now - 3600})},
        "wrong key": {"identity_token": sign({"sub": "42", "exp": now + 600}, "wis_" + "x" * 60)},
        "no sub": {"identity_token": sign({"exp": now + 600})},
        "alg none": {
            "identity_token": pyjwt.encode({"sub": "42", "exp": now + 600}, "", algorithm="none")
        },
    }
    for case, body in refused.items():
        response = await mint(client, target, body)
        assert response.status_code == 401, case
        assert response.json()["code"] in {"identity_required", "invalid_identity_token"}, case


async def test_malformed_anonymous_ids(client: httpx2.AsyncClient, db: AsyncSession) -> None:
    target = await publish(db)
    for body in ({}, {"device_id": "u:42"}, {"device_id": "anon_short"}, {"device_id": 7}):
        response = await mint(client, target, body)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == "device_id"


async def test_refresh_keeps_the_user_and_refuses_other_widgets(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    first, second = await publish(db), await publish(db)
    token = (await mint(client, first, {"device_id": DEVICE})).json()["token"]
    refreshed = await mint(client, first, {"current": token})
    assert refreshed.status_code == 200
    claims = pyjwt.decode(refreshed.json()["token"], options={"verify_signature": False})
    assert claims["sub"] == f"a:{DEVICE}"
    other = await mint(client, second, {"current": token})
    assert (other.status_code, other.json()["code"]) == (401, "invalid_session_token")
    elsewhere = await mint(client, first, {"current": token}, "https://x.example.org")
    assert elsewhere.status_code == 401


async def test_unknown_or_unpublished_widgets(client: httpx2.AsyncClient, db: AsyncSession) -> None:
    tenant = await make_tenant(db)
    draft = await create_widget(db, CLI, tenant, name="draft", origins=[SHOP])
    for pk in ("pk_nope", draft.public_key):
        response = await client.post(
            f"/v1/embed/{pk}/session", json={"device_id": DEVICE}, headers={"Origin": SHOP}
        )
        assert (response.status_code, response.json()["code"]) == (404, "widget_not_found")


async def test_rate_limit_and_recovery(
    settings: Settings, connection: AsyncConnection, db: AsyncSession
) -> None:
    app = create_test_app(settings, connection)
    async with app.state.sessionmaker() as setup:
        target = await publish(setup)
        await setup.commit()
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(30):
            assert (await mint(client, target, {"device_id": DEVICE})).status_code == 200
        limited = await mint(client, target, {"device_id": DEVICE})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["access-control-allow-origin"] == SHOP  # the loader reads it
        assert limited.json()["code"] == "rate_limited"
        other_user = await mint(client, target, {"device_id": "anon_" + "e" * 24})
        assert other_user.status_code == 200
        await app.state.rate_limiter.reset(f"mint:user:{target.widget.id}:a:{DEVICE}")
        assert (await mint(client, target, {"device_id": DEVICE})).status_code == 200


@pytest.fixture
def hosted_app(settings: Settings, connection: AsyncConnection, fake_openai: FakeOpenAI) -> FastAPI:
    return create_hosted_app(settings, connection, fake_openai)


async def test_hosted_sessions_and_refresh(hosted_app: FastAPI, fake_openai: FakeOpenAI) -> None:
    async with operator_sessions(hosted_app)() as setup:
        target = await publish(setup, HOSTED)
        await setup.commit()
    transport = httpx2.ASGITransport(app=hosted_app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        body = {"device_id": DEVICE, "context": {"plan": "pro", "secret_note": "x"}}
        response = await mint(client, target, body)
        assert response.status_code == 200, response.text
        minted = response.json()
        assert minted["mode"] == "hosted"
        sent = fake_openai.requests[-1].json
        assert sent is not None
        assert sent["user"] == f"a:{DEVICE}"
        assert sent["workflow"] == {"id": "wf_demo", "state_variables": {"plan": "pro"}}
        refreshed = await mint(client, target, {"current": minted["client_secret"]})
        assert refreshed.status_code == 200
        assert fake_openai.requests[-1].json == {**sent, "workflow": {"id": "wf_demo"}}
        bogus = await mint(client, target, {"current": "ek_bogus"})
        assert bogus.status_code == 401
        async with hosted_app.state.sessionmaker() as check:
            hashes = (await check.execute(select(SessionMint.secret_hash))).scalars().all()
        assert minted["client_secret"] not in hashes
        assert all(h is not None and len(h) == 64 for h in hashes)


async def test_a_hosted_secret_refreshes_only_while_it_lives(
    hosted_app: FastAPI, fake_openai: FakeOpenAI
) -> None:
    """A client secret refreshes into a new one only within its own life (the workflow's
    ``expires_after_seconds``; the loader refreshes before its end): one found later (a
    stale tab's, a log's) no longer buys a fresh secret for its end user, as an expired
    session token buys none."""
    async with operator_sessions(hosted_app)() as setup:
        target = await publish(setup, HOSTED)
        await setup.commit()
    transport = httpx2.ASGITransport(app=hosted_app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        live = (await mint(client, target, {"device_id": DEVICE})).json()["client_secret"]
        old = (await mint(client, target, {"device_id": DEVICE})).json()["client_secret"]
        async with operator_sessions(hosted_app)() as aging:
            await aging.execute(
                update(SessionMint)
                .where(SessionMint.secret_hash == hash_secret(old))
                .values(created_at=utcnow() - timedelta(seconds=600 + 61))
            )
            await aging.commit()
        refused = await mint(client, target, {"current": old})
        assert (refused.status_code, refused.json()["code"]) == (401, "invalid_session_token")
        assert (await mint(client, target, {"current": live})).status_code == 200


async def test_a_hosted_mint_whose_row_is_lost_still_answers_and_its_refresh_mints_anew(
    hosted_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """The ``session_mints`` row is written after the answer: when that write fails, the
    visitor still has their secret, and only its refresh is refused (the loader then mints
    anew). Here the widget vanishes from the database while the config cache still serves
    it, so the row breaks its foreign key."""
    hosted_app.state.add(config_cache(hosted_app, revalidate_after=3600))
    async with operator_sessions(hosted_app)() as setup:
        target = await publish(setup, HOSTED)
        await setup.commit()
    transport = httpx2.ASGITransport(app=hosted_app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await mint(client, target, {"device_id": DEVICE})).status_code == 200
        async with operator_sessions(hosted_app)() as gone:
            await gone.execute(delete(Widget).where(Widget.id == target.widget.id))
            await gone.commit()
        with caplog.at_level(logging.ERROR):
            response = await mint(client, target, {"device_id": DEVICE})
        assert response.status_code == 200, response.text
        logged = [r.msg["event"] for r in caplog.records if isinstance(r.msg, dict)]
        assert logged == ["hosted_mint_not_recorded"]
        refreshed = await mint(client, target, {"current": response.json()["client_secret"]})
        assert (refreshed.status_code, refreshed.json()["code"]) == (401, "invalid_session_token")


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (500, 502, "upstream_unavailable"),
        (401, 502, "upstream_rejected"),
        (None, 503, "upstream_unavailable"),
    ],
)
async def test_hosted_upstream_failures(
    hosted_app: FastAPI, fake_openai: FakeOpenAI, failure: int | None, status: int, code: str
) -> None:
    async with operator_sessions(hosted_app)() as setup:
        target = await publish(setup, HOSTED)
        await setup.commit()
    if failure is None:
        fake_openai.delay_seconds = 3
    else:
        fake_openai.fail_next(failure, "Invalid workflow for this key.")
    transport = httpx2.ASGITransport(app=hosted_app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await mint(client, target, {"device_id": DEVICE})
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert "workflow" not in response.json()["detail"]
    await hosted_app.state.part(FactBuffer).aclose()
    sent = take_sent_tasks(
        hosted_app.state.celery, hosted_app.state.settings.task_queue, ingest.name
    )
    [[error]] = [facts for _, widget, facts in sent if widget == str(target.widget.id)]
    assert (error["name"], error["end_user"], error["data"]["kind"]) == (
        "client.error",
        f"a:{DEVICE}",
        "hosted_session",
    )
    if code == "upstream_rejected":
        assert "Invalid workflow for this key." in error["data"]["message"]


async def test_openais_words_on_a_wrong_key_reach_neither_the_visitor_nor_the_tenant_with_the_key(
    settings: Settings, connection: AsyncConnection, fake_openai: FakeOpenAI
) -> None:
    app = create_test_app(
        settings,
        connection,
        openai_base_url=fake_openai.base_url,
        openai_api_key=SecretStr("sk-platform-key-0123456789"),
    )
    async with app.state.sessionmaker() as setup:
        target = await publish(setup, HOSTED)
        await setup.commit()
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://t"
    ) as client:
        response = await mint(client, target, {"device_id": DEVICE})
    assert (response.status_code, response.json()["code"]) == (502, "upstream_rejected")
    assert "Incorrect API key" not in response.text
    assert "6789" not in response.text
    await app.state.part(FactBuffer).aclose()
    sent = take_sent_tasks(app.state.celery, app.state.settings.task_queue, ingest.name)
    [[error]] = [facts for _, widget, facts in sent if widget == str(target.widget.id)]
    assert error["data"]["message"].startswith("OpenAI refused the session: Incorrect API key")
    assert "6789" not in error["data"]["message"]


async def test_hosted_sessions_use_the_tenants_own_key_once_set(
    settings: Settings, connection: AsyncConnection, fake_openai: FakeOpenAI
) -> None:
    """Hosted mints read the tenant's key from the config cache, not the database: setting
    the key makes a new revision of every widget of the tenant, so caches reload them."""
    app = create_test_app(settings, connection, openai_base_url=fake_openai.base_url)
    app.state.add(config_cache(app, revalidate_after=0))
    async with app.state.sessionmaker() as setup:
        target = await publish(setup, HOSTED)
        editor = await login(app, setup, await make_member(setup, target.tenant, Role.editor))
        await setup.commit()
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        missing = await mint(client, target, {"device_id": DEVICE})
        assert (missing.status_code, missing.json()["code"]) == (409, "openai_key_missing")
        key_url = f"/api/v1/tenants/{target.tenant.slug}/openai-key"
        put = await client.put(
            key_url, json={"api_key": fake_openai.api_key}, headers=editor.headers
        )
        assert put.status_code == 200, put.text
        minted = await mint(client, target, {"device_id": DEVICE})
        assert minted.status_code == 200, minted.text
        assert fake_openai.requests[-1].headers["authorization"] == f"Bearer {fake_openai.api_key}"
        removed = await client.delete(key_url, headers=editor.headers)
        assert removed.status_code == 204
        again = await mint(client, target, {"device_id": DEVICE})
        assert again.json()["code"] == "openai_key_missing"


async def test_backend_mint_needs_the_scope_and_the_tenant(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    target = await publish(db)
    url = f"/api/v1/tenants/{target.tenant.slug}/widgets/{target.widget.id}/sessions"
    minter = await client_token(app, db, target.tenant, [Scope.sessions_mint])
    ok = await client.post(url, json={"user": "42", "origin": SHOP}, headers=minter.headers)
    assert ok.status_code == 200, ok.text
    claims = pyjwt.decode(ok.json()["token"], options={"verify_signature": False})
    assert (claims["sub"], claims["origin"]) == ("u:42", SHOP)
    reader = await client_token(app, db, target.tenant, [Scope.widgets_read])
    assert (await client.post(url, json={"user": "42"}, headers=reader.headers)).status_code == 403
    stranger = await client_token(app, db, await make_tenant(db), [Scope.sessions_mint])
    assert (
        await client.post(url, json={"user": "42"}, headers=stranger.headers)
    ).status_code == 404
    evil = await client.post(
        url, json={"user": "42", "origin": "https://evil.test"}, headers=minter.headers
    )
    assert evil.status_code == 403
    for spoofed in ("4\u202e2", "42\u200b", "42\n"):  # as identity tokens' sub
        refused = await client.post(
            url, json={"user": spoofed, "origin": SHOP}, headers=minter.headers
        )
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert (error["field"], error["type"]) == ("user", "invisible_character")


@pytest.mark.parametrize(
    "spelling",
    ["https://SHOP.example.com", "https://shop.example.com/", "https://shop.example.com:443"],
)
async def test_a_backend_mint_binds_the_origin_as_the_browser_will_send_it(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, spelling: str
) -> None:
    """A backend naming its page in another spelling (a slash at the end, capitals, the
    default port) gets a token that page can use: its browser sends the normal form, and a
    token bound to the spelling given was a 200 that every chat request refused (401)."""
    target = await publish(db)
    url = f"/api/v1/tenants/{target.tenant.slug}/widgets/{target.widget.id}/sessions"
    minter = await client_token(app, db, target.tenant, [Scope.sessions_mint])
    minted = await client.post(url, json={"user": "42", "origin": spelling}, headers=minter.headers)
    assert minted.status_code == 200, minted.text
    token = minted.json()["token"]
    assert pyjwt.decode(token, options={"verify_signature": False})["origin"] == SHOP
    chat = await client.post(
        f"/v1/chatkit/{target.widget.public_key}",
        json={"type": "threads.list", "params": {}},
        headers={"Authorization": f"Bearer {token}", "Origin": SHOP},
    )
    assert chat.status_code == 200, chat.text
    for garbled in ("shop.example.com", "https://*.example.com"):  # no page sends a pattern
        refused = await client.post(
            url, json={"user": "42", "origin": garbled}, headers=minter.headers
        )
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["origin"]


async def test_a_retired_workflow_is_a_clear_problem_with_the_way_out(
    hosted_app: FastAPI, fake_openai: FakeOpenAI
) -> None:
    """OpenAI shut Agent Builder down on 2026-11-30: a mint for a workflow it no longer runs
    tells the visitor plainly, and the tenant's error group says to convert the widget."""
    async with operator_sessions(hosted_app)() as setup:
        target = await publish(setup, HOSTED)
        await setup.commit()
    fake_openai.retired_workflows.add("wf_demo")
    transport = httpx2.ASGITransport(app=hosted_app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await mint(client, target, {"device_id": DEVICE})
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "hosted_workflow_unavailable"
    await hosted_app.state.part(FactBuffer).aclose()
    sent = take_sent_tasks(
        hosted_app.state.celery, hosted_app.state.settings.task_queue, ingest.name
    )
    [[error]] = [facts for _, widget, facts in sent if widget == str(target.widget.id)]
    assert error["data"]["kind"] == "hosted_session"
    assert error["data"]["message"].startswith("OpenAI no longer runs workflow wf_demo")
    assert "/convert" in error["data"]["hint"]
