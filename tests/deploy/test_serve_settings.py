"""The production settings ``kithost serve`` and the app hand to uvicorn and SQLAlchemy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from kithost import cli
from kithost.app import create_app
from kithost.settings import Settings, get_settings


def test_serve_runs_uvicorn_as_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_args, **options: calls.append(options))
    env = {
        "KITHOST_DATA_DIR": str(tmp_path),
        "KITHOST_SERVE_WORKERS": "3",
        "KITHOST_GRACEFUL_SHUTDOWN_SECONDS": "75",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["serve"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    [options] = calls
    assert options["workers"] == 3
    assert options["timeout_graceful_shutdown"] == 75
    # Only KITHOST_TRUSTED_PROXIES decides whom X-Forwarded-* is believed from.
    assert options["proxy_headers"] is False
    assert (tmp_path / "metrics").is_dir()


def test_the_database_pool_is_sized_by_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        secret_key="k",
        database_url="postgresql+psycopg://kithost@127.0.0.1:1/none",  # never connected
        database_pool_size=7,
        database_max_overflow=3,
    )
    pool: Any = create_app(settings).state.engine.pool
    assert (pool.size(), pool._max_overflow) == (7, 3)
