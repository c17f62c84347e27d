"""What the knowledge base tests share: the tasks the app sent, and running them as a
worker would (in the test's transaction)."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

from kithost.knowledge import ingest
from kithost.knowledge.tasks import ingest as ingest_task
from kithost.knowledge.tasks import remove as remove_task
from kithost.settings import Settings
from kithost.storage import storage_for
from tests.workers import RecordedTasks

GUIDE = ("guide.md", b"# Returns\n\nReturns are free within 30 days.\n", "text/markdown")


async def run_ingest(app: FastAPI, tasks: RecordedTasks) -> list[str | None]:
    """Run every ingest task sent so far; the documents' statuses after."""
    settings: Settings = app.state.settings
    statuses = []
    for tenant_id, document_id in tasks.take(ingest_task.name):
        status = await ingest.ingest(
            app.state.sessionmaker,
            settings,
            app.state.secret_box,
            storage_for(settings),
            uuid.UUID(tenant_id),
            uuid.UUID(document_id),
        )
        statuses.append(None if status is None else status.value)
    return statuses


async def run_remove(app: FastAPI, tasks: RecordedTasks) -> int:
    """Run every removal task sent so far; how many."""
    settings: Settings = app.state.settings
    removals = tasks.take(remove_task.name)
    for tenant_id, store_id, file_ids, blob_keys, whole in removals:
        await ingest.remove(
            app.state.sessionmaker,
            settings,
            app.state.secret_box,
            storage_for(settings),
            uuid.UUID(tenant_id),
            store_id,
            file_ids,
            blob_keys,
            whole,
        )
    return len(removals)
