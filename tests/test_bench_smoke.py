"""The benches' own requests against a real ``kithost serve``: a change of the visitor API
that a bench does not follow (the framed chat's ``embedder``, say) fails here, not in a
``make bench`` run hours later with every request refused."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from bench import bench_chat, bench_load

from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow


async def _requests(base: str, seed: dict[str, Any], origin: str, fake: FakeOpenAI, _: str) -> None:
    public_key = seed["widget_public_key"]
    async with httpx2.AsyncClient(timeout=30) as client:
        chat = bench_chat.Chat(client, base, public_key, origin)
        token = await chat.token("anon_" + "s" * 24)
        created = await chat.create_thread(token)
        replied = await chat.reply(token, created.thread_id)
        assert (created.ok, replied.ok) == (True, True)
        assert await bench_chat.server_cpu_seconds(client, base) > 0

        tally = bench_load.Tally()
        await bench_load.visit(
            bench_load.Site(client, base, public_key, origin), tally, "anon_" + "v" * 24
        )
        assert (tally.visits, dict(tally.errors)) == (1, {})
        assert set(tally.latencies) == set(bench_load.ENDPOINTS)

    bench_chat.stream_held_answers(fake)
    fake.event_interval_seconds = 0.0  # the held answer's words, at once
    url = urlsplit(base)
    assert url.hostname is not None
    assert url.port is not None
    held = await bench_chat.raw_stream(url.hostname, url.port, public_key, origin, token)
    assert held is not None  # all its words, no error event


def test_the_chat_and_load_benches_requests_are_answered(fake_openai: FakeOpenAI) -> None:
    bench_chat.serve_and_measure(fake_openai, "SQLite", None, _requests)
