"""``kithost ping-worker``, the worker's liveness probe: it pings this machine's own worker
node over the broker, and fails when that worker is gone."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from kithost.settings import Settings
from tests.conftest import REDIS_URL
from tests.workers import start_worker, stop_worker


def ping_worker(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KITHOST_DATA_DIR": str(settings.data_dir),
        "KITHOST_BROKER_URL": REDIS_URL,
        "KITHOST_TASK_QUEUE": settings.task_queue,
        "KITHOST_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "kithost", "ping-worker", "--timeout", "2"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_ping_worker_answers_while_the_worker_lives(tmp_path: Path) -> None:
    # A queue of the test's own: the node name carries it, so other runs' workers on this
    # machine and broker cannot answer for ours.
    settings = Settings(
        data_dir=tmp_path, broker_url=REDIS_URL, task_queue=f"probe-{secrets.token_hex(4)}"
    )
    worker = start_worker(settings)
    try:
        alive = ping_worker(settings)
    finally:
        stop_worker(worker)
    assert alive.returncode == 0, alive.stderr
    assert alive.stdout.strip() == f"{settings.task_queue}@{os.uname().nodename}: pong"

    gone = ping_worker(settings)
    assert gone.returncode == 1
    assert "did not answer" in gone.stderr
