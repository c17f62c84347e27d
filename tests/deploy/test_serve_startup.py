"""``kithost serve`` with several workers (the chart's default) and a configuration it cannot
start with: the command ends at once with one line saying why, rather than holding the port
while uvicorn's supervisor starts worker after worker to die.

One case runs the real command, the way an operator (and a pod) does; the rest check each
configuration against the same code in this process, through Typer's runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from typer.testing import CliRunner

from kithost import cli
from kithost.settings import get_settings
from tests.conftest import free_port

SERVERS = {
    "KITHOST_DATABASE_URL": "postgresql+psycopg://kithost@127.0.0.1:1/none",  # never reached
    "KITHOST_BROKER_URL": "redis://127.0.0.1:1/0",
    "KITHOST_PUBLIC_URL": "https://kithost.example.com",
}
LEAKY_URL = {"KITHOST_DATABASE_URL": "postgres://kithost:hunter2-secret@db/kithost"}
LEAKY_REASON = "Can't load plugin: sqlalchemy.dialects:postgres"


def environment(tmp_path: Path, variables: dict[str, str]) -> dict[str, str]:
    return {
        "KITHOST_DATA_DIR": str(tmp_path / "data"),
        "KITHOST_PORT": str(free_port()),
        "KITHOST_SERVE_WORKERS": "2",
        **variables,
    }


def serve_process(tmp_path: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **environment(tmp_path, variables)}
    process = subprocess.Popen(
        [sys.executable, "-m", "kithost", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the supervisor and its workers
        process.communicate()
        pytest.fail("kithost serve kept running with a configuration it cannot start with")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def serve_here(tmp_path: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``kithost serve`` in this process, with only ``variables`` of Kithost's settings set
    (the test process's own are hidden); uvicorn must never be started."""
    hidden: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith("KITHOST_")
    }
    get_settings.cache_clear()
    try:
        with (
            mock.patch.object(cli, "configure_logging"),
            mock.patch("uvicorn.run") as run,
        ):
            result = CliRunner().invoke(
                cli.app, ["serve"], env={**hidden, **environment(tmp_path, variables)}
            )
    finally:
        get_settings.cache_clear()
    assert not run.called
    return subprocess.CompletedProcess(["serve"], result.exit_code, result.stdout, result.stderr)


def test_the_command_ends_with_one_line_naming_no_secret(tmp_path: Path) -> None:
    result = serve_process(tmp_path, LEAKY_URL)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"kithost serve: {LEAKY_REASON}"]
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        (
            {"KITHOST_ENV": "production", **SERVERS},
            "KITHOST_SECRET_KEY must be set in production",
        ),
        (
            {"KITHOST_ENV": "production", "KITHOST_SECRET_KEY": "k" * 32},
            "production requires KITHOST_DATABASE_URL and KITHOST_BROKER_URL",
        ),
        (
            {
                "KITHOST_ENV": "production",
                "KITHOST_SECRET_KEY": "k" * 32,
                "KITHOST_TRUSTED_PROXIES": "10.42.7.0/24, ::/0",
                **SERVERS,
            },
            "KITHOST_TRUSTED_PROXIES must not trust every address (::/0): any client could "
            "name its own",
        ),
        (
            {
                "KITHOST_ENV": "production",
                "KITHOST_SECRET_KEY": "k" * 32,
                **SERVERS,
                "KITHOST_PUBLIC_URL": "http://kithost.example.com",
            },
            "production requires KITHOST_PUBLIC_URL, an https:// URL",
        ),
        (
            {
                "KITHOST_ENV": "production",
                "KITHOST_SECRET_KEY": "k" * 32,
                **{k: v for k, v in SERVERS.items() if k != "KITHOST_PUBLIC_URL"},
            },
            "production requires KITHOST_PUBLIC_URL, an https:// URL",
        ),
        ({"KITHOST_ENV": "prod"}, "KITHOST_ENV: Input should be 'development' or 'production'"),
        ({"KITHOST_LOG_LEVEL": "LOUD"}, "Unknown level: 'LOUD'"),
        (LEAKY_URL, LEAKY_REASON),
    ],
)
def test_a_configuration_error_ends_serve_with_one_line(
    tmp_path: Path, variables: dict[str, str], reason: str
) -> None:
    result = serve_here(tmp_path, variables)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"kithost serve: {reason}"]
    assert "hunter2" not in result.stderr + result.stdout
