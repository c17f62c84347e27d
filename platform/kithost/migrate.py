"""Run Alembic migrations programmatically (``kithost migrate``) and from its CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import make_url

from kithost.models.chat_item import SEARCH_INDEX, SEARCH_TABLE
from kithost.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
URL_ATTRIBUTE = "kithost.database_url"


def alembic_config(settings: Settings | None = None) -> Config:
    """The Alembic configuration for ``settings`` (the environment's when omitted)."""
    config = Config(ROOT / "alembic.ini")
    if settings is not None:
        config.attributes[URL_ATTRIBUTE] = settings.migration_database
    return config


def database_url(config: Config) -> str:
    url: str | None = config.attributes.get(URL_ATTRIBUTE)
    return url or get_settings().database


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """What Alembic compares with the models: everything but the message search indexes
    (made by their migration's own SQL, not models)."""
    if type_ == "table":
        return not (name or "").startswith(SEARCH_TABLE)
    return not (type_ == "index" and name == SEARCH_INDEX)


def upgrade(settings: Settings, revision: str = "head") -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)
    if settings.migration_database != settings.database:
        app_role = make_url(settings.database).username
        if app_role and app_role != make_url(settings.migration_database).username:
            grant_app_role(settings.migration_database, app_role)


def grant_app_role(owner_url: str, role: str) -> None:
    """Let ``role`` (the app's, which row-level security binds) read and write every table
    and sequence of the schema, as the owner at ``owner_url`` (PostgreSQL)."""
    url = make_url(owner_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        [current] = conn.execute("SELECT current_schema()").fetchall()
        schema = sql.Identifier(str(current[0]))
        grantee = sql.Identifier(role)
        for statement in (
            "GRANT USAGE ON SCHEMA {schema} TO {role}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
        ):
            conn.execute(sql.SQL(statement).format(schema=schema, role=grantee))


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)
