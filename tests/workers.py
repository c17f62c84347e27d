"""A real ``kithost worker`` process for tests that need background work done."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import httpx2
import redis
from celery import Celery
from fastapi import FastAPI
from sqlalchemy import delete

from kithost.app import create_app
from kithost.db import session_scope
from kithost.health.tasks import ping
from kithost.models import Tenant
from kithost.settings import Settings
from kithost.worker.app import create_celery
from tests.conftest import operator_sessions

TIMEOUT = 60
STOP_GRACE_SECONDS = 30


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


def own_queue(settings: Settings, name: str, data_dir: Path, **updates: Any) -> Settings:
    """``settings`` with a task queue of its own (named for ``name``) and ``data_dir``."""
    queue = f"{settings.task_queue}-{name}-{secrets.token_hex(3)}"
    return settings.model_copy(update={"task_queue": queue, "data_dir": data_dir, **updates})


@contextmanager
def worker_running(settings: Settings, **env_vars: str) -> Iterator[subprocess.Popen[bytes]]:
    """A worker on ``settings``' database, secret key and queue (see :func:`own_queue`)
    while the block runs; then stopped (unless the test already did) and its Redis queue dropped."""
    if settings.secret_key is not None:
        env_vars = {"KITHOST_SECRET_KEY": settings.secret_key.get_secret_value(), **env_vars}
    process = start_worker(settings, KITHOST_DATABASE_URL=settings.database, **env_vars)
    try:
        yield process
    finally:
        if process.poll() is None:
            stop_worker(process)
        if settings.broker.startswith("redis://"):
            redis.Redis.from_url(settings.broker).delete(settings.task_queue)


@asynccontextmanager
async def committing_api(
    settings: Settings, tenant_prefix: str
) -> AsyncIterator[tuple[FastAPI, httpx2.AsyncClient]]:
    """An app on ``settings`` (its units of work commit, for a worker to see) and a client;
    afterwards the tenants whose slug starts with ``tenant_prefix`` are deleted, and with
    them everything the test made."""
    app = create_app(settings)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield app, client
    async with session_scope(operator_sessions(app)) as session:
        await session.execute(delete(Tenant).where(Tenant.slug.like(f"{tenant_prefix}-%")))
    await app.state.engine.dispose()


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait for a worker's effect: ``check`` true within ``TIMEOUT`` seconds."""
    for _ in range(TIMEOUT * 10):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {TIMEOUT} s")


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """Stop the worker as Kubernetes stops its pod: SIGTERM (Celery's warm shutdown: 3-5 s
    here), then, after a grace period, SIGKILL. Should Celery's shutdown hang, the worker's
    threads' stacks go to its stderr first (Celery's SIGUSR1 handler) for the test's report,
    and a warning says it was killed: no test here is about the shutdown itself, and tasks
    are acknowledged late, so a killed worker's message goes back to the broker."""
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(1)
        kill_worker(process)
        warnings.warn(
            f"the worker was still stopping after {STOP_GRACE_SECONDS} s and was killed; "
            "its threads' stacks are in the test's captured stderr",
            stacklevel=2,
        )


def kill_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its pool processes at once (its machine or container died):
    nothing it held is acknowledged or handed back."""
    children = [
        int(stat.split(" ", 1)[0])
        for stat in _stats()
        if int(stat.rsplit(") ", 1)[1].split()[1]) == process.pid
    ]
    for pid in (process.pid, *children):
        os.kill(pid, signal.SIGKILL)
    process.wait()


def _stats() -> Iterator[str]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue


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
