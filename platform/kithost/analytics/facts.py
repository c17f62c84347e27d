"""Facts Kithost itself observes (a session minted, a response finished), sent to
analytics as events named ``server.…`` through :func:`kithost.analytics.ingestion.tasks.ingest`.

Facts come from hot routes, so they are not sent one by one: each process keeps a
:class:`FactBuffer` (a part of ``app.state``) that sends what it holds as one task per widget
every :data:`FLUSH_SECONDS`, or as soon as :data:`MAX_BUFFERED` facts wait. Recording a
fact costs an append, not a broker round trip. A clean shutdown sends what is left; a
process that dies loses at most ``FLUSH_SECONDS`` of facts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from typing import Annotated, Any

import structlog
from celery import Celery
from fastapi import Depends, Request

from kithost.analytics.ingestion.tasks import ingest
from kithost.state import app_state

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 1.0
MAX_BUFFERED = 1000

Fact = dict[str, Any]


def fact(name: str, end_user: str | None, **data: Any) -> Fact:
    """One server event, stamped now; ``data`` must be JSON."""
    return _event(f"server.{name}", end_user, data)


def observed_error(end_user: str | None, kind: str, message: str, hint: str | None = None) -> Fact:
    """A ``client.error`` Kithost saw on a visitor's behalf (OpenAI refused a hosted
    session): it joins the tenant's error groups like one a loader reports."""
    data = {"kind": kind, "message": message[:1000], "hint": None if hint is None else hint[:500]}
    return _event("client.error", end_user, data)


def _event(name: str, end_user: str | None, data: dict[str, Any]) -> Fact:
    return {
        "id": f"s_{uuid.uuid4().hex}",
        "name": name,
        "time": int(time.time() * 1000),
        "end_user": end_user,
        "data": data,
    }


class FactBuffer:
    def __init__(self, celery: Celery) -> None:
        self._celery = celery
        self._waiting: defaultdict[tuple[str, str], list[Fact]] = defaultdict(list)
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def add(self, tenant_id: uuid.UUID, widget_id: uuid.UUID, *facts: Fact) -> None:
        """Send ``facts`` of one widget with the next batch."""
        self._waiting[(str(tenant_id), str(widget_id))].extend(facts)
        self._count += len(facts)
        if self._count >= MAX_BUFFERED:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Start sending everything waiting now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._waiting:
            return
        batches, self._waiting, self._count = self._waiting, defaultdict(list), 0
        task = asyncio.create_task(asyncio.to_thread(self._send, batches))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def aclose(self) -> None:
        """Send what is waiting and wait until every batch is sent."""
        self.flush()
        await asyncio.gather(*self._sending, return_exceptions=True)

    def _send(self, batches: dict[tuple[str, str], list[Fact]]) -> None:
        for (tenant_id, widget_id), facts in batches.items():
            try:
                self._celery.send_task(
                    ingest.name,
                    args=[tenant_id, widget_id, facts],
                    # Celery would repr() every fact for monitoring: half the cost of a send.
                    argsrepr=f"({tenant_id!r}, {widget_id!r}, <{len(facts)} facts>)",
                    kwargsrepr="{}",
                    ignore_result=True,
                )
            except Exception:  # the broker is down: log what is lost, keep serving
                log.exception(
                    "facts_lost", tenant_id=tenant_id, widget_id=widget_id, count=len(facts)
                )


async def _facts(request: Request) -> FactBuffer:
    return app_state(request).part(FactBuffer)


AppFacts = Annotated[FactBuffer, Depends(_facts)]
