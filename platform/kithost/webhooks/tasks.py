"""Background work of webhooks: sending a delivery, and trying again."""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from typing import Any

from celery import Task, shared_task

from kithost.db import Sessionmaker
from kithost.kit.crypto import SecretBox
from kithost.settings import get_settings
from kithost.webhooks import delivery
from kithost.worker import database
from kithost.worker.database import RETRY

MAX_BACKOFF_SECONDS = 3600
REST_JITTER_SECONDS = 10
"""Deliveries waiting for their endpoint (resting or held) or their tenant's slot for slow
endpoints come back spread over this long after it is due."""
TIME_LIMIT_SECONDS = 60
"""A backstop beyond ``delivery.TIMEOUT_SECONDS`` (the attempt's own deadline): a task
running this long is stopped (softly first), so no receiver holds a worker."""


def countdown(outcome: delivery.Attempt, retries: int) -> float:
    """Seconds before the delivery is tried again after ``outcome``: when it is due (with
    jitter) if it was not attempted, else :func:`backoff`."""
    if outcome.wait_seconds is None:
        return backoff(retries)
    return outcome.wait_seconds + random.uniform(0, REST_JITTER_SECONDS)  # noqa: S311 (jitter)


def backoff(attempts: int) -> float:
    """Seconds before the next attempt: exponential (30 s, 1 min, 2 min, … at most an hour)
    with full jitter, so an endpoint coming back is not hit by every retry at once."""
    ceiling = min(30 * 2**attempts, MAX_BACKOFF_SECONDS)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not a secret)


@shared_task(
    name="kithost.webhooks.deliver",
    bind=True,
    ignore_result=True,
    soft_time_limit=TIME_LIMIT_SECONDS,
    time_limit=TIME_LIMIT_SECONDS + 10,
    **RETRY,
)
def deliver(
    self: Task[Any, Any],
    tenant_id: str,
    delivery_id: str,
    hand_off: bool = False,
    backlog: str | None = None,
) -> bool:
    """Send one delivery; retried (the same ``webhook-id``) until it goes through, the
    endpoint is disabled after a day of failures, or it is deleted. A ``hand_off`` (the
    tenant's slot passed on by the attempt that held it, ``delivery``) is tried once and
    never retried: the delivery's own task is, so a hand-off finding the turn taken or the
    attempt failing ends (one needing no turn passes it on first), and no delivery ever has
    two tasks coming back. A ``backlog`` one (of an endpoint fast again, made before that
    time, ``delivery``) is tried once too, for the same reason."""
    settings = get_settings()
    box = SecretBox(settings.keys())

    async def run(sessionmaker: Sessionmaker) -> delivery.Attempt:
        return await delivery.attempt(
            sessionmaker,
            box,
            settings.outbound_policy,
            uuid.UUID(tenant_id),
            uuid.UUID(delivery_id),
            hand_off=hand_off,
            backlog=None if backlog is None else datetime.fromisoformat(backlog),
        )

    outcome = database.run(self.app, run)
    if outcome.retry and not hand_off and backlog is None:
        raise self.retry(countdown=countdown(outcome, self.request.retries), max_retries=None)
    return outcome.delivered
