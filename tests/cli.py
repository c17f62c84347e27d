"""Running the ``kithost`` command as a real process, against the database of
``cli_settings`` (a fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from kithost.settings import Settings


def kithost(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KITHOST_DATA_DIR": str(settings.data_dir), "KITHOST_LOG_LEVEL": "ERROR"}
    if settings.database_url:
        env["KITHOST_DATABASE_URL"] = settings.database_url
    return subprocess.run(
        [sys.executable, "-m", "kithost", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok_json(settings: Settings, *args: str, stdin: str | None = None) -> dict[str, Any]:
    result = kithost(settings, *args, "--json", stdin=stdin)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def sync_session(settings: Settings) -> Session:
    """A session for checking what a command did, as the tables' owner (every tenant's)."""
    url = settings.migration_database.replace("+aiosqlite", "")
    return Session(create_engine(url))
