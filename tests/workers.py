"""A real ``kithost worker`` process for tests that need background work done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from queue import Empty
from typing import Any

from celery import Celery

from kithost.health.tasks import ping
from kithost.settings import Settings
from kithost.worker.app import create_celery

TIMEOUT = 60


def start_worker(settings: Settings, **env_vars: str) -> subprocess.Popen[bytes]:
    """``kithost worker`` in a subprocess, configured like ``settings`` (plus ``env_vars``),
    once it answers."""
    env = {
        **os.environ,
        **env_vars,
        "KITHOST_DATA_DIR": str(settings.data_dir),
        "KITHOST_TASK_QUEUE": settings.task_queue,
        "KITHOST_LOG_LEVEL": "WARNING",
    }
    if settings.broker_url:
        env["KITHOST_BROKER_URL"] = settings.broker_url
    process = subprocess.Popen(
        [sys.executable, "-m", "kithost", "worker", "--concurrency", "1"], env=env
    )
    warmup = create_celery(settings).send_task(ping.name, args=["warmup"])
    assert warmup.get(timeout=TIMEOUT) == "warmup"
    return process


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def take_sent_tasks(celery: Celery, queue: str, name: str) -> list[list[Any]]:
    """The arguments of every ``name`` task waiting in ``queue`` (taken off the queue; other
    tasks there are dropped), when no worker consumes it."""
    found = []
    with celery.connection_for_read() as connection:
        waiting = connection.SimpleQueue(queue)
        try:
            while True:
                message = waiting.get(timeout=0.5)
                message.ack()
                if message.headers["task"] == name:
                    args, _kwargs, _embed = message.decode()
                    found.append(list(args))
        except Empty:
            pass
        finally:
            waiting.close()
    return found


@dataclass
class RecordedTasks:
    """The tasks an app sends after its commits, kept instead of sent (patch it in as the
    app's ``celery.send_task``): the test runs them as a worker would."""

    sent: list[tuple[str, list[Any]]] = field(default_factory=list)

    def record(self, name: str, args: Any = None, **_: Any) -> None:
        self.sent.append((name, json.loads(json.dumps(list(args or [])))))

    def take(self, name: str) -> list[list[Any]]:
        """The arguments of every ``name`` task recorded so far, no longer kept."""
        found = [args for sent, args in self.sent if sent == name]
        self.sent = [(sent, args) for sent, args in self.sent if sent != name]
        return found
