"""Model keys stored before keys named their endpoint are bound, by the migration, to the
``agent.base_url`` their widget's draft has (none: the operator's endpoint), on both
databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select

from kithost import migrate
from kithost.models import Tenant, Widget
from kithost.settings import Settings
from tests.conftest import database_at

BEFORE = "3c7d2e9a41b6"
"""The revision before ``widgets.model_key_base_url``."""
GATEWAY = "https://gateway.acme.example/v1"


@pytest.fixture(params=["postgresql", "sqlite"])
def before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A new database migrated up to :data:`BEFORE`."""
    with database_at(BEFORE, request.param, tmp_path) as settings:
        yield settings


def test_existing_keys_are_bound_to_their_drafts_base_url(before: Settings) -> None:
    engine = create_engine(before.database.replace("+aiosqlite", ""))
    widgets: dict[str, tuple[dict[str, Any], str | None]] = {
        "gateway": ({"agent": {"base_url": GATEWAY}}, "encrypted-1"),
        "operator": ({"agent": {"base_url": None}}, "encrypted-2"),
        "no agent": ({}, "encrypted-3"),
        "keyless": ({"agent": {"base_url": GATEWAY}}, None),
    }
    try:
        with engine.begin() as connection:
            tenant = uuid.uuid4()
            connection.execute(insert(Tenant).values(id=tenant, slug="acme", name="A"))
            for name, (draft, key) in widgets.items():
                row = {"name": name, "public_key": f"pk_{uuid.uuid4().hex}", "draft": draft}
                connection.execute(insert(Widget).values(tenant_id=tenant, model_key=key, **row))
        migrate.upgrade(before)
        with engine.connect() as connection:
            rows = connection.execute(select(Widget.name, Widget.model_key_base_url))
            bound = {name: base_url for name, base_url in rows}
    finally:
        engine.dispose()
    assert bound == {"gateway": GATEWAY, "operator": None, "no agent": None, "keyless": None}
