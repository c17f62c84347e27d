"""Send Celery tasks only once the database transaction that asked for them commits.

A request (or a task) calls :func:`enqueue` with its session; :func:`kithost.db.session_scope`
has the sessionmaker's :class:`PendingTasks` (its ``db.AfterCommit``) send what was queued
after a successful commit and drop it on rollback, so a failed request never triggers
background work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, Task
from sqlalchemy.ext.asyncio import AsyncSession

_PENDING = "kithost.pending_tasks"


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


class PendingTasks:
    """Sends the tasks a unit of work queued to ``celery`` once it commits (``db.AfterCommit``)."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    async def committed(self, session: AsyncSession) -> None:
        pending: list[_Pending] = session.info.pop(_PENDING, [])
        if pending:
            await asyncio.to_thread(self._send, pending)

    def rolled_back(self, session: AsyncSession) -> None:
        session.info.pop(_PENDING, None)

    def _send(self, pending: list[_Pending]) -> None:
        for job in pending:
            self.celery.send_task(job.name, args=job.args, kwargs=job.kwargs, task_id=job.task_id)
