"""``kithost secrets reencrypt``, run as a real process: after a new key is put first in
KITHOST_SECRET_KEY, every stored secret moves to it, so the old key can go; a secret no key
decrypts changes nothing at all."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from kithost.kit.crypto import SecretBox
from kithost.kit.keys import Keys
from kithost.models import (
    AuditLogEntry,
    SigningKey,
    Tenant,
    WebhookEndpoint,
    Widget,
    WidgetMcpSecret,
)
from kithost.settings import Settings
from tests.cli import kithost, ok_json, sync_session

OLD, NEW = "old-key-0123456789", "new-key-9876543210"
OPENAI_KEY = "sk-proj-" + "x" * 40
IDENTITY_SECRET = "wis_" + "y" * 43
MODEL_KEY = "model-key-" + "z" * 20
TOOL_SECRET = "kts_" + "t" * 43
WEBHOOK_SECRET = "whsec_" + "w" * 40
ROTATED_WEBHOOK_SECRET = "whsec_" + "v" * 40
MCP_SECRET = "Bearer mcp-" + "m" * 30


def stored(settings: Settings) -> dict[str, list[str]]:
    """Every encrypted value, by column."""
    with sync_session(settings) as session:
        return {
            "tenants.openai_api_key": [
                v for v in session.scalars(select(Tenant.openai_api_key).order_by(Tenant.id)) if v
            ],
            "widgets.identity_secret": [
                v for v in session.scalars(select(Widget.identity_secret).order_by(Widget.id)) if v
            ],
            "widgets.model_key": [
                v for v in session.scalars(select(Widget.model_key).order_by(Widget.id)) if v
            ],
            "widgets.tool_secret": [
                v for v in session.scalars(select(Widget.tool_secret).order_by(Widget.id)) if v
            ],
            "widget_mcp_secrets.secret": [
                v for v in session.scalars(select(WidgetMcpSecret.secret)) if v
            ],
            "signing_keys.private_key": list(
                session.scalars(select(SigningKey.private_key).order_by(SigningKey.id))
            ),
            "webhook_endpoints.secret": list(
                session.scalars(select(WebhookEndpoint.secret).order_by(WebhookEndpoint.id))
            ),
            "webhook_endpoints.previous_secret": [
                v
                for v in session.scalars(
                    select(WebhookEndpoint.previous_secret).order_by(WebhookEndpoint.id)
                )
                if v
            ],
        }


def decrypted(box: SecretBox, values: dict[str, list[str]]) -> dict[str, list[str]]:
    return {column: [box.decrypt(v) for v in vs] for column, vs in values.items()}


def test_reencrypt_moves_every_secret_to_the_first_key(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KITHOST_SECRET_KEY", OLD)
    ok_json(cli_settings, "demo")
    ok_json(cli_settings, "keys", "rotate")
    old_box = SecretBox(Keys((OLD,)))
    with sync_session(cli_settings) as session:
        tenant = session.scalars(select(Tenant).where(Tenant.slug == "demo")).one()
        widget = session.scalars(select(Widget).where(Widget.tenant_id == tenant.id)).one()
        tenant.openai_api_key = old_box.encrypt(OPENAI_KEY)
        widget.identity_secret = old_box.encrypt(IDENTITY_SECRET)
        widget.model_key = old_box.encrypt(MODEL_KEY)
        widget.tool_secret = old_box.encrypt(TOOL_SECRET)
        session.add(
            WebhookEndpoint(
                tenant_id=tenant.id,
                url="https://hooks.example.com/k",
                events=["widget.published"],
                secret=old_box.encrypt(WEBHOOK_SECRET),
                previous_secret=old_box.encrypt(ROTATED_WEBHOOK_SECRET),
            )
        )
        session.add(
            WidgetMcpSecret(
                tenant_id=tenant.id,
                widget_id=widget.id,
                tool_id="orders",
                secret=old_box.encrypt(MCP_SECRET),
                origin="https://mcp.example.com:443",
            )
        )
        session.commit()
        revision = widget.revision
    before = stored(cli_settings)
    plaintexts = decrypted(old_box, before)
    assert plaintexts["tenants.openai_api_key"] == [OPENAI_KEY]
    assert plaintexts["widgets.identity_secret"] == [IDENTITY_SECRET]
    assert plaintexts["widgets.model_key"] == [MODEL_KEY]
    assert plaintexts["widgets.tool_secret"] == [TOOL_SECRET]
    assert plaintexts["widget_mcp_secrets.secret"] == [MCP_SECRET]
    assert plaintexts["webhook_endpoints.secret"] == [WEBHOOK_SECRET]
    assert plaintexts["webhook_endpoints.previous_secret"] == [ROTATED_WEBHOOK_SECRET]
    assert plaintexts["signing_keys.private_key"]

    monkeypatch.setenv("KITHOST_SECRET_KEY", f"{NEW},{OLD}")
    counts = ok_json(cli_settings, "secrets", "reencrypt")
    assert counts == {column: len(values) for column, values in before.items()}

    after = stored(cli_settings)
    new_box = SecretBox(Keys((NEW,)))
    assert decrypted(new_box, after) == plaintexts
    for column, values in after.items():
        for value in values:
            assert value not in before[column]
            with pytest.raises(ValueError, match="cannot decrypt"):
                old_box.decrypt(value)
    with sync_session(cli_settings) as session:
        assert session.scalars(select(Widget.revision).where(Widget.id == widget.id)).one() == (
            revision
        )
        [entry] = session.scalars(
            select(AuditLogEntry).where(AuditLogEntry.action == "secrets.reencrypted")
        ).all()
    assert (entry.actor_type, entry.tenant_id, entry.data) == ("cli", None, counts)
    human = kithost(cli_settings, "secrets", "reencrypt")
    assert human.returncode == 0, human.stderr
    assert "tenants.openai_api_key: 1\n" in human.stdout

    # A value that no key decrypts (it is the last column re-encrypted) undoes the whole run.
    with sync_session(cli_settings) as session:
        key = session.scalars(select(SigningKey)).first()
        assert key is not None
        key.private_key = SecretBox(Keys(("lost-key-0123456789",))).encrypt("pem")
        session.commit()
    broken = stored(cli_settings)
    monkeypatch.setenv("KITHOST_SECRET_KEY", f"another-key-0123456,{NEW}")
    failed = kithost(cli_settings, "secrets", "reencrypt", "--json")
    assert failed.returncode == 1
    error = json.loads(failed.stderr.strip().splitlines()[-1])
    assert error["code"] == "undecryptable_secret"
    assert "signing_keys.private_key" in error["detail"]
    assert stored(cli_settings) == broken
    human = kithost(cli_settings, "secrets", "reencrypt")
    assert (human.returncode, human.stdout) == (1, "")
    assert "error (undecryptable_secret)" in human.stderr
