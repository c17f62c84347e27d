"""What ``make run`` points a newcomer to on the command line: a new password for the demo
owner (the first run's is shown only then), and ``ping-worker`` on the embedded broker."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from sqlalchemy import select

from kithost.auth.passwords import verify_password
from kithost.demo import DEMO_OWNER, DEMO_SLUG, DEMO_WIDGET
from kithost.models import AllowedOrigin, AuditLogEntry, DashboardSession, Tenant, User, Widget
from kithost.models.base import utcnow
from kithost.settings import Settings
from tests.cli import kithost, ok_json, sync_session


def test_demo_new_password_lets_the_owner_back_in_and_ends_their_sign_ins(
    cli_settings: Settings,
) -> None:
    first = ok_json(cli_settings, "demo")
    with sync_session(cli_settings) as session:
        owner = session.execute(select(User).where(User.email == DEMO_OWNER)).scalar_one()
        signed_in = DashboardSession(
            user_id=owner.id, token_hash="f" * 64, expires_at=utcnow() + timedelta(hours=1)
        )
        session.add(signed_in)
        session.commit()
        signed_in_id = signed_in.id

    again = ok_json(cli_settings, "demo", "--new-password")

    assert (again["created"], again["widget_public_key"]) == (False, None)
    password = again["owner_password"]
    assert password
    assert password != first["owner_password"]
    with sync_session(cli_settings) as session:
        owner = session.execute(select(User).where(User.email == DEMO_OWNER)).scalar_one()
        assert verify_password(owner.password_hash, password)
        if first["owner_password"] is not None:  # seeded by this test: the old one is gone
            assert not verify_password(owner.password_hash, first["owner_password"])
        assert session.get_one(DashboardSession, signed_in_id).revoked_at is not None
        actions = session.execute(
            select(AuditLogEntry.action, AuditLogEntry.actor_type).where(
                AuditLogEntry.target_id == str(owner.id)
            )
        ).all()
    assert ("user.password_changed", "cli") in actions
    # Without the option the password is never shown again.
    assert ok_json(cli_settings, "demo")["owner_password"] is None


def test_a_run_on_another_port_allows_its_origins_on_the_demo_widget(
    cli_settings: Settings,
) -> None:
    ok_json(cli_settings, "demo")
    moved = cli_settings.model_copy(update={"port": 8123})

    def demo_widget_origins() -> tuple[set[str], int]:
        with sync_session(cli_settings) as session:
            widget = session.execute(
                select(Widget)
                .join(Tenant, Tenant.id == Widget.tenant_id)
                .where(Tenant.slug == DEMO_SLUG, Widget.name == DEMO_WIDGET)
            ).scalar_one()
            origins = session.execute(
                select(AllowedOrigin.origin).where(AllowedOrigin.widget_id == widget.id)
            ).scalars()
            added = session.execute(
                select(AuditLogEntry).where(
                    AuditLogEntry.target_id == str(widget.id),
                    AuditLogEntry.action == "widget.origin_added",
                    AuditLogEntry.actor_type == "cli",
                )
            ).all()
            return set(origins), len(added)

    first, _ = demo_widget_origins()
    assert ok_json(moved, "demo")["created"] is False
    origins, added = demo_widget_origins()
    assert origins == first | {"http://localhost:8123", "http://127.0.0.1:8123"}
    assert added == 2
    ok_json(moved, "demo")  # allowed already: nothing more
    assert demo_widget_origins() == (origins, 2)


def test_ping_worker_on_the_embedded_broker_says_why_it_cannot_answer(
    cli_settings: Settings,
) -> None:
    started = time.monotonic()
    result = kithost(cli_settings, "ping-worker", "--timeout", "5")
    assert result.returncode == 1
    assert "carries no broadcasts" in result.stderr
    assert "KITHOST_BROKER_URL" in result.stderr
    assert time.monotonic() - started < 5  # told at once, not after the timeout


def test_demo_json_is_one_object(cli_settings: Settings) -> None:
    result = kithost(cli_settings, "demo", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["owner_email"] == DEMO_OWNER
