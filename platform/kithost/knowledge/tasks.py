"""Background work of knowledge bases: OpenAI's side of uploads and deletions."""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task, shared_task
from openai import APIConnectionError, InternalServerError, RateLimitError

from kithost.db import Sessionmaker
from kithost.kit.crypto import SecretBox
from kithost.knowledge import ingest as work
from kithost.models import DocumentStatus
from kithost.settings import get_settings
from kithost.storage import storage_for
from kithost.worker import database
from kithost.worker.database import RETRY

TRANSIENT = (APIConnectionError, RateLimitError, InternalServerError)
"""OpenAI failures worth waiting out (the task retries with backoff)."""
MAX_UPSTREAM_RETRIES = 8
"""OpenAI unreachable or overloaded: retried 8 times over about 8 minutes, then failed."""


@shared_task(name="kithost.knowledge.ingest", bind=True, ignore_result=True, **RETRY)
def ingest(self: Task[Any, Any], tenant_id: str, document_id: str) -> str | None:
    """Hand an uploaded document to OpenAI; its status after."""
    settings = get_settings()
    box = SecretBox(settings.keys())
    storage = storage_for(settings)
    tenant, document = uuid.UUID(tenant_id), uuid.UUID(document_id)

    async def run(sessionmaker: Sessionmaker) -> DocumentStatus | None:
        return await work.ingest(sessionmaker, settings, box, storage, tenant, document)

    try:
        status = database.run(self.app, run)
    except TRANSIENT as exc:
        if self.request.retries < MAX_UPSTREAM_RETRIES:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 4, 120)) from exc
        reason = f"OpenAI could not be reached ({type(exc).__name__}); upload it again later."

        async def give_up(sessionmaker: Sessionmaker) -> DocumentStatus | None:
            settled = await work.settle(sessionmaker, tenant, document, reason)
            await storage.delete([work.blob_key(tenant, document)])
            return settled

        status = database.run(self.app, give_up)
    return None if status is None else status.value


@shared_task(
    name="kithost.knowledge.remove",
    bind=True,
    ignore_result=True,
    autoretry_for=(*RETRY["autoretry_for"], *TRANSIENT),
    retry_backoff=RETRY["retry_backoff"],
    retry_backoff_max=RETRY["retry_backoff_max"],
    retry_jitter=RETRY["retry_jitter"],
    max_retries=RETRY["max_retries"],
)
def remove(
    self: Task[Any, Any],
    tenant_id: str,
    vector_store_id: str | None,
    file_ids: list[str],
    blob_keys: list[str],
    whole: bool,
    tenant_key: str | None = None,
) -> None:
    """Remove deleted documents (or a whole base) from OpenAI and the blob store
    (``tenant_key``: ``ingest.remove``'s; messages sent before it existed have none)."""
    settings = get_settings()
    box = SecretBox(settings.keys())

    async def run(sessionmaker: Sessionmaker) -> None:
        await work.remove(
            sessionmaker,
            settings,
            box,
            storage_for(settings),
            uuid.UUID(tenant_id),
            vector_store_id,
            file_ids,
            blob_keys,
            whole,
            tenant_key,
        )

    database.run(self.app, run)
