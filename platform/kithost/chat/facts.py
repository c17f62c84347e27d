"""Server-side analytics facts, sent to the analytics ingest task after the unit of work
that recorded them commits (``worker.enqueue``): nothing is reported that did not happen.

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

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.tasks import ingest
from kithost.chat.context import ChatContext
from kithost.worker.enqueue import enqueue


def report(session: AsyncSession, context: ChatContext, name: str, **data: Any) -> None:
    """Queue one fact about ``context``'s end user, sent once ``session`` commits."""
    event = {
        "id": "s_" + uuid.uuid4().hex,
        "name": name,
        "time": int(time.time() * 1000),
        "end_user": context.end_user_id,
        "data": data,
    }
    enqueue(session, ingest, str(context.tenant_id), str(context.widget_id), [event])
