"""Celery round trips: send ``kithost.ping`` tasks to ``kithost worker`` and wait for results.

Once on Redis (127.0.0.1:6379/0, a queue of its own so runs never collide), once on the
embedded broker (kombu's SQLAlchemy transport on SQLite, which polls, so fewer tasks).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path

from celery.result import AsyncResult

from bench._common import emit, kithost_env, log, service, stop_on_sigterm
from kithost.settings import Settings
from kithost.worker.app import create_celery

REDIS_URL = "redis://127.0.0.1:6379/0"
CONCURRENCY = 2
READY_TIMEOUT_SECONDS = 60.0
TASK_TIMEOUT_SECONDS = 120.0


def round_trips(name: str, work: Path, count: int, broker_url: str | None) -> None:
    """Start a worker, send ``count`` pings, wait for every result, and emit tasks/s."""
    queue = f"bench-{uuid.uuid4().hex[:12]}"
    data_dir = work / f"data-{queue}"
    settings = Settings(_env_file=None, data_dir=data_dir, task_queue=queue, broker_url=broker_url)
    celery = create_celery(settings)
    argv = [sys.executable, "-m", "kithost", "worker", f"--concurrency={CONCURRENCY}"]
    overrides = {"task_queue": queue} | ({"broker_url": broker_url} if broker_url else {})
    env = kithost_env(data_dir, **overrides)
    try:
        with service(f"worker ({name})", argv, env=env, cwd=work, log_path=work / f"{queue}.log"):
            started = time.monotonic()
            celery.send_task("kithost.ping", args=["ready"]).get(timeout=READY_TIMEOUT_SECONDS)
            log(f"the worker answered after {time.monotonic() - started:.1f}s; sending {count}")
            started = time.monotonic()
            results: list[AsyncResult[str]] = [
                celery.send_task("kithost.ping", args=[str(i)]) for i in range(count)
            ]
            sent = time.monotonic() - started
            for i, result in enumerate(results):
                if result.get(timeout=TASK_TIMEOUT_SECONDS, interval=0.05) != str(i):
                    raise RuntimeError(f"task {i} returned {result.result!r}")
            elapsed = time.monotonic() - started
            for result in results:
                result.forget()
    finally:
        if broker_url:  # drop the queue and its bindings (declared first so kombu knows them)
            with celery.connection_for_write() as connection:
                bound = celery.amqp.queues[queue].bind(connection.default_channel)
                bound.declare()
                bound.delete()
        celery.close()
    note = f"{count} pings, --concurrency {CONCURRENCY}, sending took {sent:.2f}s"
    emit("tasks", f"ping round trip ({name})", round(count / elapsed, 1), "tasks/s", note)


def main() -> int:
    stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="kithost-bench-tasks-") as tmp:
        round_trips("redis", Path(tmp), 2000, REDIS_URL)
        round_trips("embedded broker", Path(tmp), 200, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
