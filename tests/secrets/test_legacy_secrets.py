"""Secrets written before keys were derived per purpose (encrypted with the Fernet key made
from ``KITHOST_SECRET_KEY`` itself) still read, and ``kithost secrets reencrypt`` moves them
to the key derived for secrets at rest, with the same ``KITHOST_SECRET_KEY``."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from kithost.kit.crypto import SecretBox
from kithost.kit.keys import Keys, Purpose
from kithost.models import Tenant
from kithost.settings import Settings
from tests.cli import ok_json, sync_session

SECRET_KEY = "raw-key-0123456789"
OPENAI_KEY = "sk-proj-" + "l" * 40


def legacy(secret_key: str) -> Fernet:
    """How Kithost encrypted secrets at rest before: Fernet keyed by the SHA-256 of the key."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret_key.encode()).digest()))


def stored_openai_key(settings: Settings) -> str:
    with sync_session(settings) as session:
        [value] = session.scalars(select(Tenant.openai_api_key).where(Tenant.slug == "demo"))
    assert value is not None
    return value


def test_a_secret_under_the_raw_key_reads_and_moves_to_the_derived_key(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KITHOST_SECRET_KEY", SECRET_KEY)
    ok_json(cli_settings, "demo")
    with sync_session(cli_settings) as session:
        tenant = session.scalars(select(Tenant).where(Tenant.slug == "demo")).one()
        tenant.openai_api_key = legacy(SECRET_KEY).encrypt(OPENAI_KEY.encode()).decode()
        session.commit()
    before = stored_openai_key(cli_settings)
    box = SecretBox(Keys((SECRET_KEY,)))
    assert box.decrypt(before) == OPENAI_KEY

    counts = ok_json(cli_settings, "secrets", "reencrypt")
    assert counts["tenants.openai_api_key"] == 1

    after = stored_openai_key(cli_settings)
    assert after != before
    assert box.decrypt(after) == OPENAI_KEY
    derived = Fernet(base64.urlsafe_b64encode(Keys((SECRET_KEY,)).current(Purpose.secrets)))
    assert derived.decrypt(after.encode()).decode() == OPENAI_KEY
    with pytest.raises(InvalidToken):
        legacy(SECRET_KEY).decrypt(after.encode())
