"""``conversation.idle``: a thread nobody wrote in for the endpoint's ``idle_minutes`` is
announced with its transcript, once per idle period (a mark per endpoint and thread holds
the last activity announced; a thread active again is announced again once idle). Run by
the beat every minute (``kithost.conversations.announce_idle``) with the time passed in, so
tests move the clock instead of waiting. Conversations own it and send it through
``webhooks`` (which imports no conversation code), as widgets send ``widget.published``.

The transcript is bounded (a visitor may write a conversation of any length, and every
delivery is stored and sent): its last ``ITEMS`` items at most, as many of those, the
latest, as keep ``data`` within ``BYTES`` of JSON as sent. ``truncated`` says whether items
were left out, ``items_total`` how many the conversation has, ``transcript_path`` where the
REST API reads them all (``GET``, ``conversations:read``): the items left out are its first
``items_total - len(items)``, a page of up to 1,000 at a time (``next`` as ``after``)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.conversations import service as conversations
from kithost.conversations.schemas import Transcript
from kithost.db import Sessionmaker, session_scope
from kithost.kit.keys import Keys
from kithost.models import Tenant, WebhookIdleMark
from kithost.webhooks import repository, service

IDLE = "conversation.idle"
BATCH = 200
"""Threads announced per unit of work (the task goes on until none is left)."""
ITEMS = 100
"""The most items of a transcript an announcement holds: the last ones."""
BYTES = 256 * 1024
"""The most bytes of JSON an announcement's ``data`` takes, as sent (its items fewer)."""
LOOKBACK = timedelta(days=1)
"""Threads idle longer than this past their time when the task runs (the beat was down)
are not announced late; nor are threads last active before the endpoint existed."""


async def announce_idle(sessionmaker: Sessionmaker, keys: Keys, now: datetime) -> int:
    """Announce every thread idle at ``now`` to each endpoint subscribed; how many
    deliveries. ``keys`` hashes anonymous end users as exports do."""
    async with session_scope(sessionmaker) as session:
        await rls.bypass(session, rls.Bypass.sweep)
        endpoints = [
            (e.tenant_id, e.id)
            for e in await repository.enabled_endpoints(session)
            if IDLE in e.events
        ]
    announced = 0
    for tenant_id, endpoint_id in endpoints:
        while True:
            async with session_scope(sessionmaker, tenant=tenant_id) as session:
                count = await _announce(session, tenant_id, endpoint_id, keys, now)
            announced += count
            if count < BATCH:
                break
    return announced


async def _announce(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, keys: Keys, now: datetime
) -> int:
    endpoint = await repository.endpoint(session, tenant_id, endpoint_id)
    if endpoint is None or not endpoint.enabled:
        return 0
    idle_since = now - timedelta(minutes=endpoint.idle_minutes)
    active_after = max(endpoint.created_at, idle_since - LOOKBACK)
    threads = await repository.newly_idle(session, endpoint, active_after, idle_since, BATCH)
    marks = await repository.idle_marks(session, endpoint, [thread_id for thread_id, _ in threads])
    tenant = await session.get(Tenant, tenant_id)
    for thread_id, activity_at in threads:
        found = await conversations.latest_transcript(session, tenant_id, thread_id, keys, ITEMS)
        if found is not None and tenant is not None:
            path = f"/api/v1/tenants/{tenant.slug}/conversations/{thread_id}"
            service.queue_delivery(session, endpoint, IDLE, _bounded(*found, path))
        mark = marks.get(thread_id)
        if mark is None:
            session.add(
                WebhookIdleMark(
                    tenant_id=tenant_id,
                    endpoint_id=endpoint.id,
                    thread_id=thread_id,
                    activity_at=activity_at,
                )
            )
        else:
            mark.activity_at = activity_at
    return len(threads)


def _size(value: Any) -> int:
    """Bytes of ``value`` as a delivery sends it (``webhooks.delivery``: ASCII JSON)."""
    return len(json.dumps(value, separators=(",", ":")))


def _bounded(transcript: Transcript, total: int, path: str) -> dict[str, Any]:
    """The announcement's ``data``: the transcript with the latest of its items that fit in
    ``BYTES`` (none when even the last does not), and what says how to read the rest."""
    data = transcript.model_dump(mode="json", exclude={"review"})
    items: list[dict[str, Any]] = data.pop("items")
    data |= {"items": [], "truncated": False, "items_total": total, "transcript_path": path}
    size = _size(data)  # "false" is the longer: the bound holds when truncated is true
    kept = 0
    for item in reversed(items):
        size += _size(item) + (1 if kept else 0)  # the comma between items
        if size > BYTES:
            break
        kept += 1
    data["items"] = items[len(items) - kept :]
    data["truncated"] = kept < total
    return data
