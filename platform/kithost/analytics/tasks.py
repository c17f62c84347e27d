"""The one way events reach analytics: a Celery task per batch.

An event is a dict ``{"id", "name", "time", "end_user", "data"}``: ``id`` is unique per
tenant (the loader's client event id; ``s_`` + uuid4 hex for server facts), ``time`` is
epoch milliseconds, ``end_user`` the ``u:…``/``a:…`` id or ``None``. Names starting with
``server.`` are facts from Kithost itself and never accepted from a client.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="kithost.analytics.ingest")
def ingest(tenant_id: str, widget_id: str, events: list[dict[str, Any]]) -> None:
    """Store ``events`` of one widget (implemented by the Analytics issue)."""
