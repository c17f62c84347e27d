"""Server-side analytics facts: collected while a request runs, each once the unit of work
that recorded what it reports has committed, and sent as one batch (one task) when the
request ends (``Facts.send``, itself after-commit through ``worker.enqueue``). Nothing is
reported that did not happen, and nothing waits for the broker before the answer streams.

Names and data (the Analytics issue consumes them):

- ``server.thread.created`` ``{thread_id}``
- ``server.message.received`` ``{thread_id}``
- ``server.response.finished`` ``{thread_id, first_token_ms, total_ms, input_tokens,
  output_tokens}`` (token counts None when the model did not report them)
- ``server.response.failed`` ``{thread_id, error}`` (``cancelled`` when the visitor stopped it)
- ``server.feedback`` ``{thread_id, kind, items}``
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kithost.analytics.tasks import ingest
from kithost.chat.context import ChatContext
from kithost.db import Sessionmaker, session_scope
from kithost.worker.enqueue import enqueue


class Facts:
    """The facts of one request (one tenant, widget and end user)."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._context: ChatContext | None = None

    def add(self, context: ChatContext, name: str, **data: Any) -> None:
        """Record a fact about something already committed."""
        self._context = context
        self._events.append(
            {
                "id": "s_" + uuid.uuid4().hex,
                "name": name,
                "time": int(time.time() * 1000),
                "end_user": context.end_user_id,
                "data": data,
            }
        )

    async def send(self, sessionmaker: Sessionmaker) -> None:
        """Send what was recorded, in one task."""
        events, self._events = self._events, []
        if self._context is None or not events:
            return
        tenant_id, widget_id = str(self._context.tenant_id), str(self._context.widget_id)
        async with session_scope(sessionmaker) as session:
            enqueue(session, ingest, tenant_id, widget_id, events)
