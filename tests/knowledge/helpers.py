"""What the knowledge base tests share: the tasks the app sent, and running them as a
worker would (in the test's transaction)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from kithost.chat.storage import storage_for
from kithost.knowledge import ingest
from kithost.knowledge.tasks import ingest as ingest_task
from kithost.knowledge.tasks import remove as remove_task
from kithost.settings import Settings

GUIDE = ("guide.md", b"# Returns\n\nReturns are free within 30 days.\n", "text/markdown")


@dataclass
class SentTasks:
    """The tasks the app sends after its commits, kept instead of sent."""

    sent: list[tuple[str, list[Any]]] = field(default_factory=list)

    def record(self, name: str, args: Any = None, **_: Any) -> None:
        self.sent.append((name, json.loads(json.dumps(list(args or [])))))

    def take(self, name: str) -> list[list[Any]]:
        found = [args for sent, args in self.sent if sent == name]
        self.sent = [(sent, args) for sent, args in self.sent if sent != name]
        return found


async def run_ingest(app: FastAPI, tasks: SentTasks) -> list[str | None]:
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


async def run_remove(app: FastAPI, tasks: SentTasks) -> int:
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
