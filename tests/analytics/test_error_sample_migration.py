"""Error samples stored before samples left anonymous end users out lose theirs to the
migration (identified ones stay), on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select

from kithost import migrate
from kithost.models import ErrorGroup, Tenant
from kithost.models.base import utcnow
from kithost.settings import Settings
from tests.conftest import database_at

BEFORE = "1d47aea9c808"
"""The revision before samples left anonymous end users out."""


@pytest.fixture(params=["postgresql", "sqlite"])
def before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A new database migrated up to :data:`BEFORE`."""
    with database_at(BEFORE, request.param, tmp_path) as settings:
        yield settings


def test_stored_samples_lose_anonymous_end_users(before: Settings) -> None:
    engine = create_engine(before.database.replace("+aiosqlite", ""))
    samples: dict[str, dict[str, Any]] = {
        "anonymous": {"message": "a", "event_id": "e1", "end_user": "a:anon_" + "d" * 24},
        "identified": {"message": "b", "event_id": "e2", "end_user": "u:42"},
        "nobody": {"message": "c", "event_id": "e3", "end_user": None},
        "erased": {},
    }
    try:
        with engine.begin() as connection:
            tenant = uuid.uuid4()
            connection.execute(insert(Tenant).values(id=tenant, slug="acme", name="A"))
            now = utcnow()
            for name, sample in samples.items():
                row = {"kind": "network", "message": name, "fingerprint": name, "sample": sample}
                connection.execute(
                    insert(ErrorGroup).values(
                        tenant_id=tenant, widget_id=tenant, first_seen=now, last_seen=now, **row
                    )
                )
        migrate.upgrade(before)
        with engine.connect() as connection:
            rows = connection.execute(select(ErrorGroup.message, ErrorGroup.sample))
            stored = {name: sample for name, sample in rows}
    finally:
        engine.dispose()
    assert stored == {
        "anonymous": {"message": "a", "event_id": "e1"},
        "identified": samples["identified"],
        "nobody": samples["nobody"],
        "erased": {},
    }
