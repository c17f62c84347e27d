"""The ``kithost`` command against PostgreSQL and SQLite: in this process, and once as a
real process (what only a process shows)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from kithost.auth.passwords import verify_password
from kithost.cli import SCHEMA_REF
from kithost.kit.tokens import hash_secret
from kithost.models import ApiClient, AuditLogEntry, Membership, Role, Tenant, User, Widget
from kithost.settings import Settings
from tests.cli import kithost, kithost_process, ok_json, sync_session


def test_demo_seeds_once(cli_settings: Settings) -> None:
    first = ok_json(cli_settings, "demo")
    assert first["created"] is True
    assert first["widget_public_key"].startswith("pk_")
    assert len(first["widget_public_key"]) >= 3 + 22  # ≥ 128 random bits, base64url
    second = ok_json(cli_settings, "demo")
    assert second == {**first, "owner_password": None, "widget_public_key": None, "created": False}
    with sync_session(cli_settings) as session:
        owner = session.execute(select(User).where(User.email == first["owner_email"])).scalar_one()
        widgets = session.execute(select(Widget)).scalars().all()
    assert owner.password_hash is not None
    assert verify_password(owner.password_hash, first["owner_password"])
    assert [w.public_key for w in widgets] == [first["widget_public_key"]]


def test_tenant_user_and_client_creation(cli_settings: Settings) -> None:
    tenant = ok_json(
        cli_settings,
        "tenant",
        "create",
        "--slug",
        "acme",
        "--name",
        "Acme",
        "--owner-email",
        "Boss@Acme.test",
    )
    assert (tenant["slug"], tenant["owner_email"]) == ("acme", "boss@acme.test")
    assert tenant["owner_password"]

    user = ok_json(
        cli_settings,
        "user",
        "create",
        "--email",
        "ops@kithost.test",
        "--platform-admin",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert user["is_platform_admin"] is True
    assert user["password"] is None

    client = ok_json(
        cli_settings,
        "client",
        "create",
        "--tenant",
        "acme",
        "--scopes",
        "widgets:read, sessions:mint",
    )
    assert client["client_secret"].startswith("ks_")
    assert client["scopes"] == "sessions:mint widgets:read"

    with sync_session(cli_settings) as session:
        stored = session.execute(
            select(ApiClient).where(ApiClient.client_id == client["client_id"])
        ).scalar_one()
        admin = session.execute(select(User).where(User.email == "ops@kithost.test")).scalar_one()
        roles = session.execute(select(Membership.role)).scalars().all()
    assert stored.secret_hash == hash_secret(client["client_secret"])
    assert client["client_secret"] not in {stored.secret_hash, stored.client_id, stored.name}
    assert admin.password_hash is not None
    assert verify_password(admin.password_hash, "correct horse battery")
    assert Role.owner in roles


def test_openapi_of_one_tag_holds_its_operations_and_the_schemas_they_use(
    cli_settings: Settings,
) -> None:
    full = json.loads(kithost(cli_settings, "openapi").stdout)
    part = json.loads(kithost(cli_settings, "openapi", "--tag", "embed").stdout)
    assert part["paths"] == {
        path: item
        for path, item in full["paths"].items()
        if any("embed" in operation["tags"] for operation in item.values())
    }
    used = set(SCHEMA_REF.findall(json.dumps(part)))
    assert set(part["components"]["schemas"]) == used
    assert {"EmbedConfig", "SelfHostedSession"} <= used < set(full["components"]["schemas"])


@pytest.mark.parametrize(
    ("args", "code", "field"),
    [
        (
            ("tenant", "create", "--slug", "Not A Slug", "--name", "x", "--owner-email", "a@b.co"),
            "validation_failed",
            "slug",
        ),
        (
            ("tenant", "create", "--slug", "ok", "--name", "x", "--owner-email", "nope"),
            "validation_failed",
            "email",
        ),
        (
            ("client", "create", "--tenant", "nobody", "--scopes", "widgets:read"),
            "tenant_not_found",
            None,
        ),
        (
            ("client", "create", "--tenant", "nobody", "--scopes", "widgets:read,root"),
            "validation_failed",
            "scopes",
        ),
    ],
)
def test_errors_are_clear_and_exit_non_zero(
    cli_settings: Settings, args: tuple[str, ...], code: str, field: str | None
) -> None:
    result = kithost(cli_settings, *args, "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert error["code"] == code
    assert [e["field"] for e in error["errors"]] == ([field] if field else [])
    human = kithost(cli_settings, *args)
    assert human.returncode == 1
    assert f"error ({code})" in human.stderr


def test_a_tenant_is_deleted_when_its_slug_is_confirmed(cli_settings: Settings) -> None:
    create = (
        "tenant",
        "create",
        "--slug",
        "gone",
        "--name",
        "Gone",
        "--owner-email",
        "g@gone.test",
    )
    assert kithost(cli_settings, *create).returncode == 0
    with sync_session(cli_settings) as session:
        tenant_id = session.execute(select(Tenant.id).where(Tenant.slug == "gone")).scalar_one()

    def deleting(confirm: str) -> subprocess.CompletedProcess[str]:
        return kithost(
            cli_settings, "tenant", "delete", "--slug", "gone", "--confirm", confirm, "--json"
        )

    refused = deleting("Gone")
    assert refused.returncode == 1
    error = json.loads(refused.stderr.strip().splitlines()[-1])
    assert (error["code"], [e["field"] for e in error["errors"]]) == (
        "validation_failed",
        ["confirm"],
    )
    assert ok_json(cli_settings, "tenant", "delete", "--slug", "gone", "--confirm", "gone") == {
        "deleted": "gone"
    }
    with sync_session(cli_settings) as session:
        assert session.get(Tenant, tenant_id) is None
        assert session.execute(select(User).where(User.email == "g@gone.test")).scalar_one()
        entry = session.execute(
            select(AuditLogEntry).where(AuditLogEntry.target_id == str(tenant_id))
        ).scalar_one()
        assert (entry.action, entry.actor_type, entry.tenant_id) == ("tenant.deleted", "cli", None)
    again = deleting("gone")
    assert again.returncode == 1
    assert json.loads(again.stderr.strip().splitlines()[-1])["code"] == "tenant_not_found"


def test_duplicates_are_conflicts(cli_settings: Settings) -> None:
    args = ("tenant", "create", "--slug", "dup", "--name", "Dup", "--owner-email", "d@dup.test")
    assert kithost(cli_settings, *args).returncode == 0
    again = kithost(cli_settings, *args, "--json")
    assert again.returncode == 1
    assert json.loads(again.stderr.strip().splitlines()[-1])["code"] == "tenant_exists"


def test_bad_usage_exits_2(cli_settings: Settings) -> None:
    result = kithost(cli_settings, "tenant", "create", "--slug", "x")
    assert result.returncode == 2
    assert "--name" in result.stderr


def test_what_kithost_writes_is_readable_by_its_user_only(tmp_path: Path) -> None:
    """The embedded database, the broker's, the secret key and the directory holding them
    are created 0600/0700 (they hold every tenant's data and keys)."""
    data_dir = tmp_path / "data"
    result = kithost_process(Settings(data_dir=data_dir), "migrate")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    written = sorted(p.name for p in data_dir.iterdir())
    assert "kithost.db" in written
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in data_dir.iterdir()} == {
        name: 0o600 for name in written
    }
