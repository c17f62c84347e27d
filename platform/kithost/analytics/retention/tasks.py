"""The retention sweep (beat, hourly)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from kithost.analytics.retention import service
from kithost.worker import database
from kithost.worker.database import RETRY


@shared_task(name="kithost.analytics.purge", bind=True, **RETRY)
def purge(self: Task[Any, Any]) -> dict[str, int]:
    """Remove what each tenant's retention no longer keeps (beat, hourly)."""
    return database.run(self.app, service.purge_all)
