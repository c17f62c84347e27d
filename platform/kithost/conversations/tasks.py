"""Background work of conversations: writing a large export, deleting expired ones;
announcing idle conversations."""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task, shared_task

from kithost.conversations import exports, idle
from kithost.db import Sessionmaker
from kithost.models.base import utcnow
from kithost.settings import get_settings
from kithost.storage import storage_for
from kithost.worker import database
from kithost.worker.database import RETRY


@shared_task(name="kithost.conversations.write_export", bind=True, ignore_result=True, **RETRY)
def write_export(self: Task[Any, Any], tenant_id: str, export_id: str) -> bool:
    """Write an export's file to the blob storage and mark it ready (idempotent)."""
    settings = get_settings()
    storage, keys = storage_for(settings), settings.keys()

    async def run(sessionmaker: Sessionmaker) -> bool:
        return await exports.write(
            sessionmaker, storage, keys, uuid.UUID(tenant_id), uuid.UUID(export_id)
        )

    return database.run(self.app, run)


@shared_task(name="kithost.conversations.purge_exports", bind=True, **RETRY)
def purge_exports(self: Task[Any, Any]) -> int:
    """Delete the exports kept long enough (``exports.KEPT``) with their files (beat,
    hourly)."""

    async def run(sessionmaker: Sessionmaker) -> int:
        return await exports.purge_expired(sessionmaker, utcnow())

    return database.run(self.app, run)


@shared_task(name="kithost.conversations.announce_idle", bind=True, **RETRY)
def announce_idle(self: Task[Any, Any]) -> int:
    """``conversation.idle`` for the threads idle since the last run (beat, every minute)."""
    keys = get_settings().keys()

    async def run(sessionmaker: Sessionmaker) -> int:
        return await idle.announce_idle(sessionmaker, keys, utcnow())

    return database.run(self.app, run)
