"""The one way events reach analytics: a Celery task per batch.

An event is a dict ``{"id", "name", "time", "end_user", "data"}``: ``id`` is unique per
tenant (the loader's client event id; ``s_`` + uuid4 hex for server facts), ``time`` is
epoch milliseconds, ``end_user`` the ``u:…``/``a:…`` id or ``None``. Names starting with
``server.`` are facts from Kithost itself and never accepted from a client.

Workers acknowledge late and the insert is idempotent (by tenant and event id), so a
batch redelivered after a crash, or retried after a database error, is stored once.
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task, shared_task

from kithost.analytics.ingestion import service
from kithost.db import Sessionmaker, session_scope
from kithost.models.base import utcnow
from kithost.worker import database
from kithost.worker.database import RETRY


@shared_task(name="kithost.analytics.ingest", bind=True, ignore_result=True, **RETRY)
def ingest(
    self: Task[Any, Any], tenant_id: str, widget_id: str, events: list[dict[str, Any]]
) -> int:
    """Store ``events`` of one widget; returns how many were new."""

    async def work(sessionmaker: Sessionmaker) -> int:
        async with session_scope(sessionmaker, tenant=uuid.UUID(tenant_id)) as session:
            return await service.store(
                session, uuid.UUID(tenant_id), uuid.UUID(widget_id), events, utcnow()
            )

    return database.run(self.app, work)
