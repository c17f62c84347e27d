"""ChatKit streams in /metrics: how they end, how long they take, and the first token's
latency."""

from __future__ import annotations

import httpx2
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession

from tests.chat.helpers import deltas, make_chat_widget, visitor
from tests.fakes.openai_server import FakeOpenAI


async def samples(http: httpx2.AsyncClient) -> dict[tuple[str, str], float]:
    text = (await http.get("/metrics")).text
    return {
        (s.name, s.labels.get("result", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("kithost_chat_")
    }


async def test_streams_are_counted_and_timed(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await make_chat_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    before = await samples(http)
    assert deltas(await alice.send("Hello"))
    after = await samples(http)

    def delta(name: str, result: str = "") -> float:
        return after.get((name, result), 0.0) - before.get((name, result), 0.0)

    assert delta("kithost_chat_streams_total", "completed") == 1
    assert delta("kithost_chat_streams_total", "failed") == 0
    assert delta("kithost_chat_stream_duration_seconds_count") == 1
    assert delta("kithost_chat_first_token_seconds_count") == 1
    assert (
        0
        < delta("kithost_chat_first_token_seconds_sum")
        <= delta("kithost_chat_stream_duration_seconds_sum")
    )
