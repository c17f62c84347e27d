"""Running the ``kithost`` command against the database of ``cli_settings`` (a fixture of
``tests/conftest.py``): in this process through Typer's runner (``kithost``), or as a real
process (``kithost_process``, for what only a process shows: its umask)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from kithost import cli
from kithost.settings import Settings, get_settings


def _environment(settings: Settings) -> dict[str, str]:
    env = {
        "KITHOST_DATA_DIR": str(settings.data_dir),
        "KITHOST_LOG_LEVEL": "ERROR",
        "KITHOST_PORT": str(settings.port),
    }
    if settings.database_url:
        env["KITHOST_DATABASE_URL"] = settings.database_url
    return env


def kithost(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The command's exit status and output, run in this process. It runs in a thread of its
    own (the command runs its own event loop, and async tests have one running) and leaves
    the test process's logging alone."""

    def invoke() -> subprocess.CompletedProcess[str]:
        get_settings.cache_clear()
        try:
            with mock.patch.object(cli, "configure_logging"):
                result = CliRunner().invoke(
                    cli.app, list(args), input=stdin, env=_environment(settings)
                )
        finally:
            get_settings.cache_clear()
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return subprocess.CompletedProcess(
            list(args), result.exit_code, result.stdout, result.stderr
        )

    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(invoke).result(timeout=60)


def kithost_process(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as a real process, the way an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "kithost", *args],
        env={**os.environ, **_environment(settings)},
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
