"""The database from inside Celery tasks: one event loop and one engine per worker process.

Tasks are synchronous functions; :func:`run` runs a coroutine on the process's own loop
with a sessionmaker on the process's own engine, both created on first use in that process
(after the prefork pool forked it), so connections are pooled across tasks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TypedDict, TypeVar

from celery import Celery
from sqlalchemy.exc import InterfaceError, OperationalError

from kithost import rls
from kithost.db import Sessionmaker, create_engine, create_sessionmaker
from kithost.settings import Environment, get_settings
from kithost.worker.enqueue import PendingTasks

T = TypeVar("T")


class _Retry(TypedDict):
    autoretry_for: tuple[type[Exception], ...]
    retry_backoff: bool
    retry_backoff_max: int
    retry_jitter: bool
    max_retries: None


RETRY = _Retry(
    autoretry_for=(OperationalError, InterfaceError, OSError),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=None,
)
"""Database outages are waited out (exponential backoff, at most 5 minutes apart)."""

_runtime: tuple[int, asyncio.Runner, Sessionmaker] | None = None


def run(celery: Celery, work: Callable[[Sessionmaker], Awaitable[T]]) -> T:
    """``work(sessionmaker)`` on this process's loop; tasks it enqueues go to ``celery``."""
    global _runtime
    if _runtime is None or _runtime[0] != os.getpid():
        runner = asyncio.Runner()
        settings = get_settings()
        engine = create_engine(
            settings.database,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        rls.check_binding(engine, refuse=settings.env is Environment.production)
        _runtime = (os.getpid(), runner, create_sessionmaker(engine, PendingTasks(celery)))
    _, runner, sessionmaker = _runtime
    return runner.run(work(sessionmaker))  # type: ignore[arg-type]
