"""Kithost session tokens: bound to one widget, one origin, one end user, minutes long."""

from __future__ import annotations

import dataclasses
import time

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import signing
from kithost.errors import Unauthorized
from kithost.sessions import tokens
from kithost.sessions.tokens import SessionClaims

CLAIMS = SessionClaims(
    end_user_id="u:42", origin="https://shop.example.com", tenant_id="t1", widget_id="w1"
)


async def test_a_token_verifies_for_its_widget_and_origin(app: FastAPI, db: AsyncSession) -> None:
    settings, box = app.state.settings, app.state.secret_box
    minted = await tokens.issue(db, settings, box, public_key="pk_a", claims=CLAIMS)
    verified = await tokens.verify(
        db, settings, minted.token, public_key="pk_a", origin="https://shop.example.com"
    )
    assert verified == tokens.VerifiedSession(**vars(CLAIMS), expires_at=minted.expires_at)
    assert minted.expires_at - settings.session_token_ttl_seconds > 1_700_000_000


@pytest.mark.parametrize(
    ("public_key", "origin"),
    [("pk_other", "https://shop.example.com"), ("pk_a", "https://evil.example.com")],
)
async def test_other_widgets_and_origins_are_refused(
    app: FastAPI, db: AsyncSession, public_key: str, origin: str
) -> None:
    settings, box = app.state.settings, app.state.secret_box
    minted = await tokens.issue(db, settings, box, public_key="pk_a", claims=CLAIMS)
    with pytest.raises(Unauthorized) as refused:
        await tokens.verify(db, settings, minted.token, public_key=public_key, origin=origin)
    assert refused.value.code == "invalid_session_token"


async def test_expired_and_garbage_tokens_are_refused(app: FastAPI, db: AsyncSession) -> None:
    settings = app.state.settings.model_copy(update={"session_token_ttl_seconds": 60})
    box = app.state.secret_box
    minted = await tokens.issue(db, settings, box, public_key="pk_a", claims=CLAIMS)
    stale = await signing.sign(
        db,
        box,
        {
            "iss": settings.base_url,
            "aud": tokens.audience("pk_a"),
            "sub": "u:42",
            "origin": CLAIMS.origin,
        },
        60,
        now=minted.expires_at - 7200,
    )
    for token in (stale, "garbage", minted.token + "x"):
        with pytest.raises(Unauthorized):
            await tokens.verify(db, settings, token, public_key="pk_a", origin=CLAIMS.origin)


async def test_no_token_outlives_the_identity_behind_it(app: FastAPI, db: AsyncSession) -> None:
    settings, box = app.state.settings, app.state.secret_box
    soon = int(time.time()) + 30
    identified = dataclasses.replace(CLAIMS, identity_expires_at=soon)
    minted = await tokens.issue(db, settings, box, public_key="pk_a", claims=identified)
    assert minted.expires_at == soon
    verified = await tokens.verify(
        db, settings, minted.token, public_key="pk_a", origin=CLAIMS.origin
    )
    assert verified.identity_expires_at == soon
    gone = dataclasses.replace(CLAIMS, identity_expires_at=int(time.time()))
    with pytest.raises(Unauthorized) as refused:
        await tokens.issue(db, settings, box, public_key="pk_a", claims=gone)
    assert refused.value.code == "identity_expired"
