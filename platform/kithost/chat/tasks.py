"""Background work of the chat runtime."""

from __future__ import annotations

import asyncio

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task

from kithost.settings import get_settings
from kithost.storage import storage_for


@shared_task(
    name="kithost.chat.delete_blobs",
    autoretry_for=(OSError, BotoCoreError, ClientError),
    retry_backoff=True,
    max_retries=5,
)
def delete_blobs(tenant_id: str, keys: list[str]) -> None:
    """Remove stored bytes whose rows a committed transaction deleted (chat attachments,
    conversation exports; idempotent)."""
    asyncio.run(storage_for(get_settings()).delete(keys))
