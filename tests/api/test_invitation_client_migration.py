"""Invitations made before they named their API client get it from the audit log, and the
pending ones of clients revoked before go (a revoked client's admin invitation could still
be accepted), on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select

from kithost import migrate
from kithost.models import ApiClient, AuditLogEntry, Invitation, Role, Tenant
from kithost.models.base import utcnow
from kithost.settings import Settings
from tests.conftest import database_at

BEFORE = "f486ee6ab118"
"""The revision before invitations named their API client."""


@pytest.fixture(params=["postgresql", "sqlite"])
def before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A new database migrated up to :data:`BEFORE`."""
    with database_at(BEFORE, request.param, tmp_path) as settings:
        yield settings


def test_invitations_name_their_client_and_a_revoked_ones_pending_go(before: Settings) -> None:
    engine = create_engine(before.database.replace("+aiosqlite", ""))
    now = utcnow()
    tenant = uuid.uuid4()
    live, revoked = uuid.uuid4(), uuid.uuid4()
    made_by: dict[
        str, tuple[str | None, bool]
    ] = {  # invitation: (the client_id that made it, accepted)
        "live-pending": ("kc_live", False),
        "revoked-pending": ("kc_revoked", False),
        "revoked-accepted": ("kc_revoked", True),
        "cli-pending": (None, False),
    }
    ids = {name: uuid.uuid4() for name in made_by}
    try:
        with engine.begin() as connection:
            connection.execute(insert(Tenant).values(id=tenant, slug="acme", name="A"))
            for id, name, revoked_at in [
                (live, "kc_live", None),
                (revoked, "kc_revoked", now),
            ]:
                connection.execute(
                    insert(ApiClient).values(
                        id=id,
                        tenant_id=tenant,
                        name=name,
                        client_id=name,
                        secret_hash="h",
                        scopes=["members:write"],
                        revoked_at=revoked_at,
                    )
                )
            for name, (client_id, accepted) in made_by.items():
                connection.execute(
                    insert(Invitation).values(
                        id=ids[name],
                        tenant_id=tenant,
                        email=f"{name}@example.test",
                        role=Role.admin,
                        token_hash=name,
                        expires_at=now + timedelta(days=1),
                        accepted_at=now if accepted else None,
                    )
                )
                connection.execute(
                    insert(AuditLogEntry).values(
                        tenant_id=tenant,
                        actor_type="client" if client_id else "cli",
                        actor_id=client_id,
                        action="invitation.created",
                        target_type="invitation",
                        target_id=str(ids[name]),
                        data={},
                    )
                )
        migrate.upgrade(before)
        with engine.connect() as connection:
            rows = connection.execute(select(Invitation.id, Invitation.invited_by_client_id))
            stored = dict(rows.all())
    finally:
        engine.dispose()
    assert stored == {
        ids["live-pending"]: live,
        ids["revoked-accepted"]: revoked,
        ids["cli-pending"]: None,
    }
