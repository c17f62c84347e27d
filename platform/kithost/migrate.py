"""Run Alembic migrations programmatically (``kithost migrate``) and from its CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from kithost.models.chat_item import SEARCH_INDEX, SEARCH_TABLE
from kithost.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
URL_ATTRIBUTE = "kithost.database_url"


def alembic_config(settings: Settings | None = None) -> Config:
    """The Alembic configuration for ``settings`` (the environment's when omitted)."""
    config = Config(ROOT / "alembic.ini")
    if settings is not None:
        config.attributes[URL_ATTRIBUTE] = settings.database
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


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)
