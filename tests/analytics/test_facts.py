"""The fact buffer: one ingest task per widget and flush, sent through the real broker."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import FastAPI

from kithost.analytics import facts
from kithost.analytics.facts import FactBuffer, fact
from kithost.analytics.ingestion.tasks import ingest
from tests.workers import take_sent_tasks


def sent(app: FastAPI) -> list[list[object]]:
    return take_sent_tasks(app.state.celery, app.state.settings.task_queue, ingest.name)


async def test_a_full_buffer_sends_one_task_per_widget(app: FastAPI) -> None:
    sent(app)  # whatever earlier tests left
    buffer = FactBuffer(app.state.celery)
    tenant, widget_a, widget_b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first = fact("thread.created", "a:x", thread_id="thr_1")
    buffer.add(tenant, widget_a, first)
    buffer.add(tenant, widget_b, fact("thread.created", None, thread_id="thr_2"))
    rest = [fact("message.received", "a:x", thread_id="thr_1")] * (facts.MAX_BUFFERED - 2)
    buffer.add(tenant, widget_a, *rest)  # reaches MAX_BUFFERED: sent without the timer
    await buffer.aclose()
    by_widget = {w: events for t, w, events in sent(app) if t == str(tenant)}
    assert by_widget.keys() == {str(widget_a), str(widget_b)}
    assert by_widget[str(widget_a)] == [first, *rest]
    assert first["name"] == "server.thread.created"
    assert first["id"].startswith("s_")


async def test_a_fact_waits_for_the_timer(app: FastAPI) -> None:
    buffer = FactBuffer(app.state.celery)
    tenant = uuid.uuid4()
    buffer.add(tenant, uuid.uuid4(), fact("thread.created", None, thread_id="thr_1"))
    assert [t for t, _w, _e in sent(app) if t == str(tenant)] == []
    await asyncio.sleep(facts.FLUSH_SECONDS + 0.5)
    assert [t for t, _w, _e in sent(app) if t == str(tenant)] == [str(tenant)]
