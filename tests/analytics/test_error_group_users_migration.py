"""Error groups' end users stored with their raw ids become hashes with their latest
occurrence (from the raw events the retention kept), and those with no such event left are
deleted, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, insert, select

from kithost import migrate
from kithost.analytics.errors.repository import end_user_hash
from kithost.models import AnalyticsEvent, ErrorGroup, ErrorGroupUser, Tenant
from kithost.models.base import utcnow
from kithost.settings import Settings
from tests.conftest import database_at

BEFORE = "bb42f09518a6"
"""The revision before error groups' end users were hashed."""

STORED_USERS = sa.table(
    "error_group_users",
    sa.column("group_id", sa.Uuid()),
    sa.column("end_user_id", sa.String()),
    sa.column("tenant_id", sa.Uuid()),
)
"""``error_group_users`` as :data:`BEFORE` has it."""


@pytest.fixture(params=["postgresql", "sqlite"])
def before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A new database migrated up to :data:`BEFORE`."""
    with database_at(BEFORE, request.param, tmp_path) as settings:
        yield settings


def test_error_group_users_become_hashes_and_expire_with_their_events(before: Settings) -> None:
    engine = create_engine(before.database.replace("+aiosqlite", ""))
    tenant, widget, other_widget = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = utcnow().replace(microsecond=0)
    seen = {
        "a:anon_" + "x" * 24: now - timedelta(days=3),
        "u:42": now - timedelta(hours=1),
    }
    try:
        with engine.begin() as connection:
            connection.execute(insert(Tenant).values(id=tenant, slug="acme", name="A"))
            group = uuid.uuid4()
            connection.execute(
                insert(ErrorGroup).values(
                    id=group,
                    tenant_id=tenant,
                    widget_id=widget,
                    fingerprint="f",
                    kind="network",
                    message="Boom",
                    sample={},
                    first_seen=now - timedelta(days=3),
                    last_seen=now,
                )
            )
            events = [
                *((user, widget, "client.error", at) for user, at in seen.items()),
                ("u:42", widget, "client.error", now - timedelta(days=2)),
                ("u:42", widget, "loader.loaded", now),  # not an error
                ("u:42", other_widget, "client.error", now),  # another widget's
                # the retention purged this visitor's: none left
                ("a:anon_" + "p" * 24, widget, "loader.loaded", now),
            ]
            for i, (user, widget_id, name, at) in enumerate(events):
                connection.execute(
                    insert(AnalyticsEvent).values(
                        tenant_id=tenant,
                        event_id=f"ev_{i:08d}",
                        widget_id=widget_id,
                        name=name,
                        occurred_at=at,
                        received_at=at,
                        end_user_id=user,
                        data={},
                    )
                )
            for user in [*seen, "a:anon_" + "p" * 24]:
                connection.execute(
                    insert(STORED_USERS).values(group_id=group, end_user_id=user, tenant_id=tenant)
                )
        migrate.upgrade(before)
        with engine.connect() as connection:
            rows = connection.execute(
                select(ErrorGroupUser.end_user_hash, ErrorGroupUser.last_seen)
            ).all()
    finally:
        engine.dispose()
    assert dict(rows) == {end_user_hash(tenant, user): at for user, at in seen.items()}
