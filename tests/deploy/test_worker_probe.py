"""``kithost ping-worker``, the worker's liveness probe: it pings this machine's own worker
node over the broker, and fails when that worker is gone. The same worker serves its task
outcomes as Prometheus metrics, counted in its pool process."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from kithost.settings import Settings
from tests.conftest import REDIS_URL, free_port
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
    port = free_port()
    (tmp_path / "metrics").mkdir()
    worker = start_worker(
        settings,
        KITHOST_WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    try:
        alive = ping_worker(settings)
        # start_worker waited for one kithost.ping task: the pool process counted it.
        scraped = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        stop_worker(worker)
    tasks = {
        (s.labels["task"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.name == "kithost_worker_tasks_total"
    }
    assert tasks == {("kithost.ping", "success"): 1.0}
    assert alive.returncode == 0, alive.stderr
    assert alive.stdout.strip() == f"{settings.task_queue}@{os.uname().nodename}: pong"

    gone = ping_worker(settings)
    assert gone.returncode == 1
    assert "did not answer" in gone.stderr
