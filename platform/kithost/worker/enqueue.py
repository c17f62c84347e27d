"""Send Celery tasks only once the database transaction that asked for them commits.

A request (or a task) calls :func:`enqueue` with its session; :func:`kithost.db.session_scope`
sends what was queued after a successful commit and drops it on rollback, so a failed
request never triggers background work. Sessions carry their Celery app in
``session.info["celery"]`` (see :func:`kithost.db.create_sessionmaker`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, Task
from sqlalchemy.ext.asyncio import AsyncSession

_PENDING = "kithost.pending_tasks"
CELERY = "celery"


@dataclass(frozen=True)
class _Pending:
    name: str
    args: Sequence[Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    task_id: str | None = None


def enqueue(
    session: AsyncSession,
    task: Task[Any, Any],
    *args: Any,
    task_id: str | None = None,
    **kwargs: Any,
) -> None:
    """Queue ``task(*args, **kwargs)`` to be sent after ``session`` commits."""
    session.info.setdefault(_PENDING, []).append(_Pending(task.name, args, kwargs, task_id))


def discard_pending(session: AsyncSession) -> None:
    session.info.pop(_PENDING, None)


async def send_pending(session: AsyncSession) -> None:
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    if pending:
        await asyncio.to_thread(_send, session.info[CELERY], pending)


def _send(celery: Celery, pending: list[_Pending]) -> None:
    for job in pending:
        celery.send_task(job.name, args=job.args, kwargs=job.kwargs, task_id=job.task_id)
