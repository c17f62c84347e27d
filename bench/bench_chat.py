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
- **Held streams**: how many open streams one process holds, rather than how many it can
  start in one instant. Each answer streams for ``ANSWER_SECONDS``, one word-sized text
  delta every ``WORD_SECONDS`` (a model's pace), and streams arrive at a steady N /
  ``ANSWER_SECONDS`` a second: the rate that keeps N open (fewer arrivals would need
  longer answers than real ones), so N are open once the ramp is over; arrivals go on for
  ``HOLD_SECONDS`` more. N steps through ``HELD_STEPS`` while every stream completes (all
  its deltas, no error) and the first token of the streams started after the ramp has a
  median and a p95 under 1 s, then the gap to the first N that failed is halved while it is
  over a quarter of the last N that passed. The visitors are a process of their own (raw
  HTTP/1.1 on asyncio, a connection per stream) so that reading every delta of N streams
  does not compete with the fake model, whose server thread then has this process to itself.
  Unlike the burst, this figure says what a process holds while answering at a model's
  pace: each delta is an event parsed from the model's stream and an SSE event written.
- **Model stream read alone**: the CPU per text delta of reading ``READ_ALONE_STREAMS``
  (250) such held answers with Kithost's model (the operator's aiohttp pool, openai's
  stream, the Agents SDK's model, the pacing) in a process that does nothing else: the part
  of a held stream's cost that no change to Kithost's own code moves, against the budget
  ``TARGET_STREAMS`` held streams leave a delta (1 s / their deltas a second). Beside it, the
  same answers read by aiohttp as lines and each event's data parsed by ``json``, nothing
  more: a floor for any reader in Python on this event loop.

The target (bench/README.md): an added time to first token of at most 5 ms at the median,
and at least 500 concurrent streams.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx2
import uvloop
from agents import ModelSettings, ModelTracing
from openai.types.responses import ResponseTextDeltaEvent
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
from kithost.chat.model import TEXT_DELTA
from kithost.chat.model import model as kithost_model
from kithost.kit.outbound import OutboundPolicy
from kithost.kit.upstream import ModelClients, ModelEndpoint, complete_stream_events
from kithost.widgets.config import Agent

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
TARGET_STREAMS = 500
READ_ALONE_STREAMS = 250
HELD_STEPS = (100, 250, 500, 750, 1000)
ANSWER_SECONDS = 15.0
WORD_SECONDS = 0.05  # 20 text deltas a second, as bench_load's model streams
HOLD_SECONDS = 5.0
WORDS = round(ANSWER_SECONDS / WORD_SECONDS)


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


async def timed_stream(client: httpx2.AsyncClient, url: str, **kwargs: Any) -> Timing:
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
    except httpx2.TransportError as exc:  # a broken stream fails, as an error event does
        log(f"a stream broke: {exc!r}")
        return Timing(0.0, 0.0, ok=False)
    if first_byte is None or first_token is None:
        return Timing(0.0, 0.0, ok=False)
    return Timing(first_byte, first_token, ok, body)


class Chat:
    def __init__(self, client: httpx2.AsyncClient, base: str, public_key: str, origin: str):
        self.client, self.base, self.public_key, self.origin = client, base, public_key, origin

    async def token(self, device: str) -> str:
        response = await self.client.post(
            f"{self.base}/v1/embed/{self.public_key}/session",
            # The framed chat's page is Kithost's own: it names the page framing it, the
            # demo page here (sessions.service.embedder_of).
            json={"device_id": device, "embedder": self.origin},
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


async def direct_first_token(client: httpx2.AsyncClient, fake: FakeOpenAI) -> float:
    timing = await timed_stream(
        client,
        f"{fake.base_url}/responses",
        json={"model": "gpt-4.1-mini", "input": "Hello", "stream": True},
        headers={"Authorization": f"Bearer {fake.api_key}"},
    )
    return timing.first_token


async def measure(base: str, seed: dict[str, Any], origin: str, fake: FakeOpenAI, db: str) -> None:
    """Emit the figures for one ``kithost serve``; ``db`` names its database in them."""
    limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as client:
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

        tokens += [await chat.token(f"anon_{n:024d}") for n in range(MAX_STREAMS, held_total())]
        await held_streams(chat, tokens, fake, db)


async def concurrent_streams(chat: Chat, tokens: list[str], db: str) -> bool:
    """Whether every one of ``len(tokens)`` streams opened at once, each on a connection of
    its own (visitors are distinct browsers), completes with a median first token under
    ``MAX_FIRST_TOKEN_SECONDS``."""
    limits = httpx2.Limits(max_connections=len(tokens), max_keepalive_connections=0)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as client:
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


def held_total(streams: int = HELD_STEPS[-1]) -> int:
    """The streams one held step opens: the ramp to ``streams``, then ``HOLD_SECONDS`` more."""
    return streams + round(streams / ANSWER_SECONDS * HOLD_SECONDS)


@dataclass(frozen=True)
class HeldStep:
    streams: int
    failed: int
    first_tokens: list[float]
    """Of the streams started after the ramp, in seconds."""
    open_at_start: list[int]
    """How many streams were open as each of those started."""
    server_cpu_percent: float
    """``kithost serve``'s CPU over the hold, as % of one core."""
    visitors_cpu_percent: float
    """The visitors' process's CPU over the whole step, as % of one core."""
    seconds: float
    """The whole step's wall time."""

    def first_token(self, quantile: int) -> float:
        return statistics.quantiles(self.first_tokens, n=100)[quantile - 1]

    @property
    def passed(self) -> bool:
        return not self.failed and self.first_token(95) < MAX_FIRST_TOKEN_SECONDS


async def held_streams(chat: Chat, tokens: list[str], fake: FakeOpenAI, db: str) -> None:
    """Step through ``HELD_STEPS`` while the held streams pass, then halve the gap between
    the last that passed and the first that failed while it is over a quarter of the
    former; emit the largest that passed."""
    held: HeldStep | None = None
    failed: HeldStep | None = None
    stream_held_answers(fake)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as visitors:

        async def step(streams: int) -> HeldStep:
            run = visitors.submit(
                held_step, chat.base, chat.public_key, chat.origin, tokens, streams
            )
            model_cpu = time.process_time()
            done = await asyncio.wrap_future(run)
            model_cpu = time.process_time() - model_cpu
            log(
                f"{db}: {streams} held streams: {done.failed} failed, first token after the "
                f"ramp p50 {done.first_token(50) * 1000:.0f} ms, p95 "
                f"{done.first_token(95) * 1000:.0f} ms, {len(done.first_tokens)} streams "
                f"started with {min(done.open_at_start)} to {max(done.open_at_start)} open; "
                f"server CPU {done.server_cpu_percent:.0f} % (of one core, over the hold); "
                f"over the step: visitors {done.visitors_cpu_percent:.0f} %, fake model "
                f"{model_cpu / done.seconds * 100:.0f} %"
            )
            return done

        for streams in HELD_STEPS:
            tried = await step(streams)
            if not tried.passed:
                failed = tried
                break
            held = tried
        while held and failed and failed.streams - held.streams > held.streams // 4:
            tried = await step((held.streams + failed.streams) // 2)
            held, failed = (tried, failed) if tried.passed else (held, tried)
    fake.reset()
    shown = held or failed
    assert shown is not None
    emit(
        "chat",
        f"{db}: held streams sustained",
        held.streams if held else 0,
        "streams",
        f"{ANSWER_SECONDS:.0f} s answers of {WORDS} deltas, arriving at N / "
        f"{ANSWER_SECONDS:.0f} s ({shown.streams / ANSWER_SECONDS:.0f}/s); at N: first token p50 "
        f"{shown.first_token(50) * 1000:.0f} / p95 {shown.first_token(95) * 1000:.0f} ms, "
        f"server CPU {shown.server_cpu_percent:.0f} %; "
        + (f"{failed.streams} failed" if failed else "the largest step tried"),
    )
    delta_us = shown.server_cpu_percent / 100 / (shown.streams / WORD_SECONDS) * 1e6
    emit(
        "chat",
        f"{db}: server CPU per streamed text delta, {shown.streams} held",
        delta_us,
        "µs",
        f"kithost serve's CPU over the hold / {shown.streams / WORD_SECONDS:,.0f} deltas/s "
        f"(the {shown.streams / ANSWER_SECONDS:.0f} starts/s included); one core: at most "
        f"{1e6 / delta_us * WORD_SECONDS:.0f} streams at {1 / WORD_SECONDS:.0f} deltas/s",
    )


def stream_held_answers(fake: FakeOpenAI) -> None:
    """Make the fake model answer as held streams need: ``WORDS`` words, one every
    ``WORD_SECONDS``."""
    fake.reply_text = " ".join(["word"] * WORDS)
    fake.event_interval_seconds = WORD_SECONDS


def _read_alone(base_url: str, api_key: str, streams: int) -> tuple[float, float]:
    """CPU seconds per text delta of reading ``streams`` held answers with Kithost's model,
    then with aiohttp and ``json`` alone (``read_alone``)."""
    return (
        uvloop.run(_read_with_kithost(base_url, api_key, streams)),
        uvloop.run(_read_bare(base_url, api_key, streams)),
    )


async def _read_with_kithost(base_url: str, api_key: str, streams: int) -> float:
    """Answers read by Kithost's model on the operator's pool."""
    complete_stream_events()
    clients = ModelClients(60, OutboundPolicy())
    client = clients.client(ModelEndpoint(base_url, api_key, chosen_by_tenant=False))
    sent = asyncio.Event()
    sent.set()  # no response to wait for: the first token is out at once

    async def answer() -> int:
        model = kithost_model(Agent(), client, sent)
        events = model.stream_response(
            None,
            "Hello",
            ModelSettings(),
            [],
            None,
            [],
            ModelTracing.DISABLED,
            previous_response_id=None,
            conversation_id=None,
            prompt=None,
        )
        deltas = [e.delta async for e in events if isinstance(e, ResponseTextDeltaEvent)]
        return len("".join(deltas).split())

    try:
        return await _cpu_per_word(answer, streams)
    finally:
        await clients.aclose()


async def _read_bare(base_url: str, api_key: str, streams: int) -> float:
    """Answers read as lines by aiohttp, each event's data parsed by ``json`` and nothing
    more: a floor for any reader in Python on this event loop."""
    request = {"model": Agent().model, "input": "Hello", "stream": True}
    headers = {"Authorization": f"Bearer {api_key}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def answer() -> int:
            deltas = []
            async with session.post(f"{base_url}/responses", json=request) as response:
                async for line in response.content:
                    if line.startswith(b"data: "):
                        event = json.loads(line[6:])
                        if event["type"] == TEXT_DELTA:
                            deltas.append(event["delta"])
            return len("".join(deltas).split())

        return await _cpu_per_word(answer, streams)


async def _cpu_per_word(answer: Callable[[], Coroutine[Any, Any, int]], streams: int) -> float:
    """CPU seconds per word of ``streams`` answers (``answer`` reads one and returns its
    words), started at a steady pace over ``ANSWER_SECONDS`` as held streams arrive."""
    await answer()  # warm up
    cpu = time.process_time()
    answers = []
    for _ in range(streams):
        answers.append(asyncio.create_task(answer()))
        await asyncio.sleep(ANSWER_SECONDS / streams)
    words = sum(await asyncio.gather(*answers))
    cpu = time.process_time() - cpu
    if words != streams * WORDS:
        raise SystemExit(f"reading the model alone: {words} of {streams * WORDS} words")
    return cpu / words


def held_step(base: str, public_key: str, origin: str, tokens: list[str], streams: int) -> HeldStep:
    """One held step, run in the visitors' process (see the module docstring)."""
    return uvloop.run(_held_step(base, public_key, origin, tokens, streams))


async def _held_step(
    base: str, public_key: str, origin: str, tokens: list[str], streams: int
) -> HeldStep:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    total = held_total(streams)
    arrivals_per_second = streams / ANSWER_SECONDS
    opened = 0
    after_ramp: list[tuple[int, float]] = []
    failed = 0

    async def visitor(index: int) -> None:
        nonlocal opened, failed
        open_at_start = opened
        opened += 1
        first_token = await raw_stream(host, port, public_key, origin, tokens[index])
        opened -= 1
        if first_token is None:
            failed += 1
        elif index >= streams:
            after_ramp.append((open_at_start, first_token))

    async def hold_cpu() -> float:
        """The server's CPU over the hold, per cent of one core: between its two answers to
        ``/metrics``, which a busy server gives late (the second's delay counts)."""
        await asyncio.sleep(ANSWER_SECONDS)
        # A connection each: kept alive for the hold, the second read raced the server's
        # closing it as idle (both time out at ~5 s) and failed the step with a ReadError.
        fresh = httpx2.Limits(max_keepalive_connections=0)
        async with httpx2.AsyncClient(timeout=30, limits=fresh) as client:
            before = await server_cpu_seconds(client, base)
            since = time.perf_counter()
            await asyncio.sleep(HOLD_SECONDS)
            used = await server_cpu_seconds(client, base) - before
            return used / (time.perf_counter() - since) * 100

    cpu = asyncio.create_task(hold_cpu())
    own_cpu = time.process_time()
    started = time.perf_counter()
    visitors = []
    for index in range(total):
        await asyncio.sleep(max(0.0, started + index / arrivals_per_second - time.perf_counter()))
        visitors.append(asyncio.create_task(visitor(index)))
    await asyncio.gather(*visitors)
    seconds = time.perf_counter() - started
    return HeldStep(
        streams=streams,
        failed=failed,
        first_tokens=[first_token for _, first_token in after_ramp] or [float("inf")] * 2,
        open_at_start=[open_at_start for open_at_start, _ in after_ramp] or [0],
        server_cpu_percent=await cpu,
        visitors_cpu_percent=(time.process_time() - own_cpu) / seconds * 100,
        seconds=seconds,
    )


async def raw_stream(
    host: str, port: int, public_key: str, origin: str, token: str
) -> float | None:
    """Seconds to the first text delta of one ``threads.create`` answer over a connection of
    its own, or None unless it completes with all ``WORDS`` words and no error. Plain
    HTTP/1.1 on asyncio streams: httpx2 costs more CPU per chunk than the server does."""
    body = json.dumps({"type": "threads.create", "params": {"input": MESSAGE}}).encode()
    request = (
        f"POST /v1/chatkit/{public_key} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nOrigin: {origin}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    started = time.perf_counter()
    first_token = None
    head, rest = b"", []
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        while chunk := await reader.read(65536):
            if first_token is None:
                head += chunk
                if DELTA in head:
                    first_token = time.perf_counter() - started
            else:
                rest.append(chunk)
        writer.close()
    except OSError as exc:
        log(f"a held stream broke: {exc!r}")
        return None
    response = head + b"".join(rest)
    complete = response.startswith(b"HTTP/1.1 200") and response.endswith(b"\r\n0\r\n\r\n")
    error = response.find(b'"type":"error"')
    words = len(streamed_text(response).split())
    if not complete or error >= 0 or words != WORDS:
        why = f"{words} of {WORDS} words, complete: {complete}"
        if error >= 0:
            why += f", error event: {response[error - 200 : error + 300]!r}"
        log(f"a held stream failed ({why}): {response[:200]!r} … {response[-200:]!r}")
        return None
    return first_token


def streamed_text(response: bytes) -> str:
    """The text of a raw response's text deltas (Kithost joins those that come close
    together: ``kithost.chat.model``)."""
    return "".join(
        json.loads(line.removeprefix(b"data: "))["update"]["delta"]
        for line in response.split(b"\n")
        if line.startswith(b"data: ") and DELTA in line
    )


async def server_cpu_seconds(client: httpx2.AsyncClient, base: str) -> float:
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
            max_open_answers="100000",  # the capacity measured, not the cap's refusals
            **({"database_url": database_url} if database_url else {}),
        )
        seed = seed_demo_json(env)
        argv = [sys.executable, "-m", "kithost", "serve"]
        with service("kithost serve", argv, env=env, cwd=ROOT, log_path=data / "serve.log") as api:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz", api)
            asyncio.run(measure(base, seed, f"http://localhost:{port}", fake, db))
        for line in logged_errors(data / "serve.log")[:80]:  # why a stream failed, if one did
            log(f"{db}: kithost serve: {line}")


def logged_errors(path: Path) -> list[str]:
    """The errors in a ``kithost serve`` log, each with its traceback (chatkit logs the
    exception behind a stream's error event)."""
    errors: list[str] = []
    taking = False
    for line in path.read_text().splitlines():
        if line[:1].isdigit():  # a new record: "2026-12-06T05:25:00Z [level ] …"
            taking = "[error" in line
        if taking:
            errors.append(line)
    return errors


def on_both_databases(measure: Measure) -> None:
    """``measure`` the demo served on SQLite, then on a scratch PostgreSQL database, its
    model the fake OpenAI server (in this process)."""
    stop_on_sigterm()
    with FakeOpenAI() as fake:
        serve_and_measure(fake, "SQLite", None, measure)
        with scratch_postgres() as url:
            serve_and_measure(fake, "PostgreSQL", url, measure)


def read_alone() -> None:
    """Emit what reading ``READ_ALONE_STREAMS`` held answers costs Kithost's model and
    nothing else (the operator's pool, openai's stream, the Agents SDK's model, the pacing),
    and what it costs aiohttp and ``json`` alone, against the budget of a held stream's text
    delta at the target. In a process of its own, so the fake model's CPU is not counted."""
    spawn = multiprocessing.get_context("spawn")
    with FakeOpenAI() as fake, ProcessPoolExecutor(max_workers=1, mp_context=spawn) as reader:
        stream_held_answers(fake)
        read = reader.submit(_read_alone, fake.base_url, fake.api_key, READ_ALONE_STREAMS)
        kithost_seconds, bare_seconds = read.result()
    budget_us = 1e6 / (TARGET_STREAMS / WORD_SECONDS)
    answers = f"{READ_ALONE_STREAMS} held answers of the fake model read"
    emit(
        "chat",
        "model stream read alone: CPU per text delta",
        kithost_seconds * 1e6,
        "µs",
        f"{answers} by Kithost's model (openai's stream, the Agents SDK's model, the pacing) and "
        f"nothing else; {TARGET_STREAMS} held streams leave {budget_us:.0f} µs a delta for "
        "everything, the starts included",
    )
    emit(
        "chat",
        "the same read by aiohttp and json alone: CPU per text delta",
        bare_seconds * 1e6,
        "µs",
        f"{answers} as lines by aiohttp, each event's data parsed by json and nothing more: a "
        "floor for any reader in Python on this event loop",
    )


if __name__ == "__main__":
    on_both_databases(measure)
    read_alone()
