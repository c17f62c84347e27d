"""The self-hosted ChatKit runtime: Kithost's added time to the first streamed token, and
how many concurrent streams one API process sustains.

The real ``kithost serve`` (one process, ``kithost demo``'s self-hosted widget) answers with
the fake OpenAI server of the tests (``tests/fakes/openai_server.py``, in this process, on
loopback) as its model. Everything is measured twice: on SQLite (the embedded default) and on
PostgreSQL (a scratch database on 127.0.0.1:5432, dropped afterwards).

- **Added time to first token**: 60 sequential ``threads.create`` requests (each a new
  thread: token check, thread and message written, history read, the Agents SDK run); the
  time to the first assistant text delta through Kithost, minus the median time to the first
  text delta when the same client asks the fake model directly (it streams at once). Also
  reported: the time to the response's first byte (``thread.created``), and the same for
  ``threads.add_user_message`` to each of those threads (a reply: its history is read).
- **Concurrent streams**: N visitors open ``threads.create`` streams at once while the model
  streams each answer over ~2 s; N doubles from 25 while every stream completes and the
  median time to the first token stays under 1 s, then the gap between the last such N and
  the first that fails is halved while it is over a quarter of that N. The largest N that
  passed is the figure (a burst: every visitor arrives in the same instant).
- **Server CPU per answered stream**: ``kithost serve``'s own CPU time over those steps
  (``process_cpu_seconds_total`` from its ``/metrics``) divided by the streams they
  answered. The burst figure depends on how busy the machine is; this one hardly does, and
  it is what bounds a process: one core answers at most 1000 / that many streams a second.

The target (bench/README.md): an added time to first token of at most 5 ms at the median,
and at least 500 concurrent streams.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.fakes.openai_server import FakeOpenAI

from bench._common import (
    emit,
    free_port,
    kithost_env,
    log,
    scratch_postgres,
    seed_demo_json,
    service,
    stop_on_sigterm,
    wait_http,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 60
DELTA = b"assistant_message.content_part.text_delta"
MESSAGE = {
    "content": [{"type": "input_text", "text": "Hello"}],
    "attachments": [],
    "inference_options": {},
}
STREAM_SECONDS = 2.0
MAX_FIRST_TOKEN_SECONDS = 1.0
FIRST_STREAMS = 25
MAX_STREAMS = 800


@dataclass(frozen=True)
class Timing:
    first_byte: float
    first_token: float
    ok: bool
    body: bytes = b""

    @property
    def thread_id(self) -> str:
        first = json.loads(self.body.split(b"\n\n", 1)[0].removeprefix(b"data: "))
        thread_id: str = first["thread"]["id"]
        return thread_id


async def timed_stream(client: httpx.AsyncClient, url: str, **kwargs: Any) -> Timing:
    """Seconds to the first byte and to the first text delta of one streamed answer."""
    started = time.perf_counter()
    first_byte = first_token = None
    body = b""
    try:
        async with client.stream("POST", url, **kwargs) as response:
            async for chunk in response.aiter_raw():
                now = time.perf_counter() - started
                first_byte = first_byte if first_byte is not None else now
                body += chunk
                if (first_token is None and DELTA in body) or b"output_text.delta" in body:
                    first_token = first_token if first_token is not None else now
            ok = response.status_code == 200 and b'"type":"error"' not in body
    except httpx.TransportError as exc:  # a broken stream fails, as an error event does
        log(f"a stream broke: {exc!r}")
        return Timing(0.0, 0.0, ok=False)
    if first_byte is None or first_token is None:
        return Timing(0.0, 0.0, ok=False)
    return Timing(first_byte, first_token, ok, body)


class Chat:
    def __init__(self, client: httpx.AsyncClient, base: str, public_key: str, origin: str):
        self.client, self.base, self.public_key, self.origin = client, base, public_key, origin

    async def token(self, device: str) -> str:
        response = await self.client.post(
            f"{self.base}/v1/embed/{self.public_key}/session",
            json={"device_id": device},
            headers={"Origin": self.origin},
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    async def create_thread(self, token: str) -> Timing:
        return await self.send(token, {"type": "threads.create", "params": {"input": MESSAGE}})

    async def reply(self, token: str, thread_id: str) -> Timing:
        params = {"thread_id": thread_id, "input": MESSAGE}
        return await self.send(token, {"type": "threads.add_user_message", "params": params})

    async def send(self, token: str, body: dict[str, Any]) -> Timing:
        return await timed_stream(
            self.client,
            f"{self.base}/v1/chatkit/{self.public_key}",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Origin": self.origin},
        )


async def direct_first_token(client: httpx.AsyncClient, fake: FakeOpenAI) -> float:
    timing = await timed_stream(
        client,
        f"{fake.base_url}/responses",
        json={"model": "gpt-4.1-mini", "input": "Hello", "stream": True},
        headers={"Authorization": f"Bearer {fake.api_key}"},
    )
    return timing.first_token


async def measure(base: str, seed: dict[str, Any], origin: str, fake: FakeOpenAI, db: str) -> None:
    """Emit the figures for one ``kithost serve``; ``db`` names its database in them."""
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        chat = Chat(client, base, seed["widget_public_key"], origin)
        token = await chat.token("anon_" + "b" * 24)
        for _ in range(10):  # warm up both paths
            await chat.create_thread(token)
            await direct_first_token(client, fake)
        direct = [await direct_first_token(client, fake) for _ in range(SAMPLES)]
        through = [await chat.create_thread(token) for _ in range(SAMPLES)]
        replies = [await chat.reply(token, t.thread_id) for t in through]
        if not all(t.ok for t in through + replies):
            raise SystemExit("a stream through Kithost failed")
        model_ms = statistics.median(direct) * 1000
        token_ms = statistics.median(t.first_token for t in through) * 1000
        byte_ms = statistics.median(t.first_byte for t in through) * 1000
        emit(
            "chat",
            f"{db}: model alone: first token, median",
            model_ms,
            "ms",
            f"the fake model asked directly, {SAMPLES} requests",
        )
        emit(
            "chat",
            f"{db}: through Kithost: first byte, median",
            byte_ms,
            "ms",
            "threads.create: thread.created event",
        )
        emit(
            "chat",
            f"{db}: through Kithost: first token, median",
            token_ms,
            "ms",
            f"threads.create, {SAMPLES} sequential requests",
        )
        reply_ms = statistics.median(t.first_token for t in replies) * 1000
        emit(
            "chat",
            f"{db}: through Kithost: first token of a reply, median",
            reply_ms,
            "ms",
            f"threads.add_user_message to a 2-item thread, {SAMPLES} requests",
        )
        emit(
            "chat",
            f"{db}: added time to first token of a reply, median",
            reply_ms - model_ms,
            "ms",
            "through Kithost minus the model alone",
        )
        emit(
            "chat",
            f"{db}: Kithost's added time to first token, median",
            token_ms - model_ms,
            "ms",
            "through Kithost minus the model alone; the target is at most 5",
        )

        fake.event_interval_seconds = STREAM_SECONDS / 7  # the reply's 7 words over ~2 s
        tokens = [await chat.token(f"anon_{n:024d}") for n in range(MAX_STREAMS)]
        sustained, failed_at, streams = 0, MAX_STREAMS + 1, FIRST_STREAMS
        cpu_seconds, answered = 0.0, 0
        while sustained < streams <= MAX_STREAMS and failed_at - sustained > sustained // 4:
            cpu_before = await server_cpu_seconds(client, base)
            passed = await concurrent_streams(chat, tokens[:streams], db)
            cpu_seconds += await server_cpu_seconds(client, base) - cpu_before
            answered += streams
            if passed:
                sustained = streams
            else:
                failed_at = streams
            streams = streams * 2 if failed_at > MAX_STREAMS else (sustained + failed_at) // 2
        emit(
            "chat",
            f"{db}: concurrent streams sustained",
            sustained,
            "streams",
            f"all complete, first token median < {MAX_FIRST_TOKEN_SECONDS:.0f} s; "
            f"answers stream ~{STREAM_SECONDS:.0f} s; a burst; the next N tried failed",
        )
        per_stream_ms = cpu_seconds / answered * 1000
        emit(
            "chat",
            f"{db}: server CPU per answered stream",
            per_stream_ms,
            "ms",
            f"kithost serve's CPU over the concurrency steps / {answered} streams; "
            f"one core: at most {1000 / per_stream_ms:.0f} streams/s",
        )


async def concurrent_streams(chat: Chat, tokens: list[str], db: str) -> bool:
    """Whether every one of ``len(tokens)`` streams opened at once, each on a connection of
    its own (visitors are distinct browsers), completes with a median first token under
    ``MAX_FIRST_TOKEN_SECONDS``."""
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        visitors = Chat(client, chat.base, chat.public_key, chat.origin)
        started = time.perf_counter()
        timings = await asyncio.gather(*(visitors.create_thread(token) for token in tokens))
    elapsed = time.perf_counter() - started
    failed = sum(not t.ok for t in timings)
    first = statistics.median(t.first_token for t in timings if t.ok) if failed < len(tokens) else 0
    log(
        f"{db}: {len(tokens)} concurrent streams: {failed} failed, first token median "
        f"{first * 1000:.0f} ms, all done in {elapsed:.1f} s"
    )
    return not failed and first <= MAX_FIRST_TOKEN_SECONDS


async def server_cpu_seconds(client: httpx.AsyncClient, base: str) -> float:
    """The CPU time ``kithost serve`` has used so far (``process_cpu_seconds_total``)."""
    response = await client.get(f"{base}/metrics")
    response.raise_for_status()
    for line in response.text.splitlines():
        name, _, value = line.partition(" ")
        if name == "process_cpu_seconds_total":
            return float(value)
    raise SystemExit("kithost serve's /metrics has no process_cpu_seconds_total")


Measure = Callable[[str, dict[str, Any], str, FakeOpenAI, str], Coroutine[Any, Any, None]]
"""Measures one ``kithost serve``: ``(base URL, kithost demo's seed, origin, fake, db)``."""


def serve_and_measure(
    fake: FakeOpenAI, db: str, database_url: str | None, measure: Measure
) -> None:
    """Seed a fresh data directory (and database), serve it, measure it."""
    fake.reset()
    with tempfile.TemporaryDirectory(prefix="kithost-bench-chat-") as tmp:
        data = Path(tmp)
        port = free_port()
        env = kithost_env(
            data,
            port=str(port),
            log_level="WARNING",
            openai_base_url=fake.base_url,
            openai_api_key=fake.api_key,
            mint_limit_per_client="100000000",
            mint_limit_per_user="100000000",
            **({"database_url": database_url} if database_url else {}),
        )
        seed = seed_demo_json(env)
        argv = [sys.executable, "-m", "kithost", "serve"]
        with service("kithost serve", argv, env=env, cwd=ROOT, log_path=data / "serve.log") as api:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz", api)
            asyncio.run(measure(base, seed, f"http://localhost:{port}", fake, db))


def on_both_databases(measure: Measure) -> None:
    """``measure`` the demo served on SQLite, then on a scratch PostgreSQL database, its
    model the fake OpenAI server (in this process)."""
    stop_on_sigterm()
    with FakeOpenAI() as fake:
        serve_and_measure(fake, "SQLite", None, measure)
        with scratch_postgres() as url:
            serve_and_measure(fake, "PostgreSQL", url, measure)


if __name__ == "__main__":
    on_both_databases(measure)
