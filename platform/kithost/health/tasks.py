from __future__ import annotations

from celery import shared_task


@shared_task(name="kithost.ping")
def ping(payload: str = "pong") -> str:
    """Echo ``payload``: proves that the broker, a worker and the result backend work."""
    return payload
