"""The rollup of the hours ingestion marked (beat, every ``KITHOST_ANALYTICS_ROLLUP_SECONDS``)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from kithost.analytics.rollups import service
from kithost.worker import database
from kithost.worker.database import RETRY


@shared_task(name="kithost.analytics.rollup", bind=True, **RETRY)
def rollup(self: Task[Any, Any]) -> int:
    """Recompute the rollups of the hours that got events since (beat, every minute)."""
    return database.run(self.app, service.rollup_pending)
