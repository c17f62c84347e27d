"""One Alembic history for both databases: it upgrades, downgrades, and matches the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect

from kithost import migrate
from kithost.models import Base
from kithost.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "postgresql":
        url = create_pg_database()
        yield Settings(data_dir=tmp_path, database_url=url)
        drop_pg_database(url)
    else:
        yield Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db")


def _sync_url(settings: Settings) -> str:
    return settings.database.replace("+aiosqlite", "")


def _tables(settings: Settings) -> set[str]:
    engine = create_engine(_sync_url(settings))
    try:
        names = set(inspect(engine).get_table_names()) - {"alembic_version"}
        return {name for name in names if migrate.include_name(name, "table", {})}
    finally:
        engine.dispose()


def _diff(settings: Settings) -> list[object]:
    engine = create_engine(_sync_url(settings))
    try:
        with engine.connect() as connection:
            return _compare(connection)
    finally:
        engine.dispose()


def _compare(connection: Connection) -> list[object]:
    opts = {"compare_type": True, "include_name": migrate.include_name}
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, Base.metadata))


def test_upgrade_downgrade_upgrade(fresh_settings: Settings) -> None:
    migrate.upgrade(fresh_settings)
    assert _tables(fresh_settings) == set(Base.metadata.tables)
    migrate.downgrade(fresh_settings, "base")
    assert _tables(fresh_settings) == set()
    migrate.upgrade(fresh_settings)
    assert _tables(fresh_settings) == set(Base.metadata.tables)


def test_models_and_migrations_do_not_drift(fresh_settings: Settings) -> None:
    migrate.upgrade(fresh_settings)
    assert _diff(fresh_settings) == []
    command.check(migrate.alembic_config(fresh_settings))
