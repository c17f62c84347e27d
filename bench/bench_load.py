"""A load test: many visitors at once, each doing what a visitor's browser does.

The real ``kithost serve`` (one uvicorn process) on a scratch PostgreSQL database, with
Redis as the broker (a queue of this run's own) and one ``kithost worker --concurrency 2``
reading it; the fake OpenAI server of the tests (``tests/fakes/openai_server.py``, in this
process, on loopback) as the model of ``kithost demo``'s self-hosted widget, streaming its
7-word answer over ~0.35 s. Everything on loopback.

Each visitor (an asyncio task with its own device id, sharing one httpx2 client) loops until
its phase ends: ``GET /embed/{pk}.js``, ``GET /v1/embed/{pk}/config``, ``POST …/session``,
``POST /v1/chatkit/{pk}`` (``threads.create``, streamed to its end) and ``POST …/events``
(a batch of 5), with the page's ``Origin``. A failed step (an exception, a status other
than 200/202, an error event in the stream) is counted and ends that visit.

Two phases, ``PHASES``: a moderate number of visitors (errors must be 0 there), then more.
Figures per phase: visits and requests per second, p50/p95/p99 per endpoint (the chat: to
its first text delta and to its end), errors; then the peak RSS of each server process
(sampled every ``RSS_INTERVAL`` s from ``/proc``). A run takes under a minute.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import redis
from tests.fakes.openai_server import FakeOpenAI

from bench._common import (
    emit,
    free_port,
    kithost_env,
    log,
    scratch_postgres,
    seed_demo,
    service,
    stop_on_sigterm,
    wait_http,
)
from bench.bench_chat import MESSAGE, timed_stream

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/0"
PHASES = ((20, 12.0), (60, 12.0))
"""(visitors, seconds) of each phase, in order."""
EVENTS_PER_BATCH = 5
WORD_SECONDS = 0.05
RSS_INTERVAL = 0.5
ENDPOINTS = (
    "GET /embed/{pk}.js",
    "GET config",
    "POST session",
    "POST chatkit: first token",
    "POST chatkit: whole answer",
    "POST events",
)


class Failed(Exception):
    """A step of a visit that did not succeed."""


@dataclass
class Tally:
    """Latencies (seconds) per endpoint and errors per endpoint, for one phase."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    visits: int = 0


@dataclass(frozen=True)
class Site:
    client: httpx2.AsyncClient
    base: str
    public_key: str
    origin: str

    def url(self, path: str) -> str:
        return f"{self.base}{path.replace('{pk}', self.public_key)}"


async def step(tally: Tally, name: str, request: Awaitable[httpx2.Response]) -> httpx2.Response:
    started = time.perf_counter()
    try:
        response = await request
    except httpx2.HTTPError as exc:
        tally.errors[name] += 1
        raise Failed(name) from exc
    if response.status_code not in (200, 202):
        tally.errors[name] += 1
        raise Failed(f"{name}: {response.status_code} {response.text[:200]}")
    tally.latencies[name].append(time.perf_counter() - started)
    return response


async def chat(site: Site, tally: Tally, token: str) -> None:
    """One streamed ``threads.create``: to the first text delta, and to the end."""
    started = time.perf_counter()
    try:
        timing = await timed_stream(
            site.client,
            site.url("/v1/chatkit/{pk}"),
            json={"type": "threads.create", "params": {"input": MESSAGE}},
            headers={"Authorization": f"Bearer {token}", "Origin": site.origin},
        )
    except httpx2.HTTPError as exc:
        tally.errors["POST chatkit: whole answer"] += 1
        raise Failed("chat") from exc
    if not timing.ok:
        tally.errors["POST chatkit: whole answer"] += 1
        raise Failed(f"chat: {timing.body[-200:]!r}")
    tally.latencies["POST chatkit: first token"].append(timing.first_token)
    tally.latencies["POST chatkit: whole answer"].append(time.perf_counter() - started)


async def visit(site: Site, tally: Tally, device: str) -> None:
    """What one page view with one chat sends."""
    origin = {"Origin": site.origin}
    await step(tally, "GET /embed/{pk}.js", site.client.get(site.url("/embed/{pk}.js")))
    await step(
        tally, "GET config", site.client.get(site.url("/v1/embed/{pk}/config"), headers=origin)
    )
    minted = await step(
        tally,
        "POST session",
        site.client.post(
            site.url("/v1/embed/{pk}/session"),
            # The framed chat names the page framing it (the demo page, Kithost's own).
            json={"device_id": device, "embedder": site.origin},
            headers=origin,
        ),
    )
    session: dict[str, Any] = minted.json()
    await chat(site, tally, session["token"])
    now = int(time.time() * 1000)
    names = ["loader.loaded", "launcher.shown", "widget.opened", "session.minted"]
    names += ["chatkit.response.end"] * (EVENTS_PER_BATCH - len(names))
    events = [
        {"id": f"ev_{secrets.token_hex(8)}", "name": n, "time": now, "data": {}} for n in names
    ]
    await step(
        tally,
        "POST events",
        site.client.post(
            site.url("/v1/embed/{pk}/events"),
            json={"end_user": session["end_user"], "events": events},
            headers=origin,
        ),
    )
    tally.visits += 1


async def visitor(site: Site, tally: Tally, deadline: float) -> None:
    device = f"anon_{secrets.token_urlsafe(16)}"
    while time.monotonic() < deadline:
        try:
            await visit(site, tally, device)
        except Failed as exc:
            log(f"failed: {exc} {exc.__cause__!r}")


async def phase(site: Site, visitors: int, seconds: float) -> tuple[Tally, float]:
    tally = Tally()
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(visitor(site, tally, deadline) for _ in range(visitors)))
    return tally, time.monotonic() - started


def report(visitors: int, tally: Tally, elapsed: float) -> None:
    label = f"{visitors} visitors"
    requests = sum(len(v) for k, v in tally.latencies.items() if k != "POST chatkit: first token")
    errors = sum(tally.errors.values())
    emit(
        "load",
        f"{label}: visits",
        tally.visits / elapsed,
        "visits/s",
        f"{requests / elapsed:.0f} requests/s, {errors} errors, {elapsed:.0f} s",
    )
    for name in ENDPOINTS:
        runs = sorted(tally.latencies.get(name, []))
        if not runs:
            emit(
                "load", f"{label}: {name}, p95", 0, "ms", f"no success, {tally.errors[name]} errors"
            )
            continue
        q = statistics.quantiles(runs, n=100, method="inclusive")
        emit(
            "load",
            f"{label}: {name}, p95",
            q[94] * 1000,
            "ms",
            f"p50 {q[49] * 1000:.1f}, p99 {q[98] * 1000:.1f} ms; {len(runs) / elapsed:.1f}/s, "
            f"{tally.errors[name]} errors",
        )


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += descendants(int(child))
    return found


class RssSampler:
    """Peak RSS of each process of the named process trees, sampled in a thread."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(RSS_INTERVAL):
            for name, root in self.roots.items():
                for n, pid in enumerate(descendants(root)):
                    key = name if n == 0 else f"{name}, child {n}"
                    self.peaks[key] = max(self.peaks.get(key, 0), rss_kib(pid))


async def drive(site: Site) -> None:
    for _ in range(3):  # warm up: imports, connections, caches
        await visit(site, Tally(), f"anon_{secrets.token_urlsafe(16)}")
    for visitors, seconds in PHASES:
        log(f"{visitors} visitors for {seconds:.0f} s")
        report(visitors, *await phase(site, visitors, seconds))


def run(fake: FakeOpenAI, database_url: str, work: Path) -> None:
    port = free_port()
    queue = f"bench-load-{secrets.token_hex(4)}"
    env = kithost_env(
        work,
        port=str(port),
        log_level="WARNING",
        database_url=database_url,
        broker_url=REDIS_URL,
        task_queue=queue,
        openai_base_url=fake.base_url,
        openai_api_key=fake.api_key,
        mint_limit_per_client="100000000",
        mint_limit_per_user="100000000",
    )
    public_key = seed_demo(env)
    kithost = [sys.executable, "-m", "kithost"]
    worker = [*kithost, "worker", "--concurrency=2"]
    # Idle connections are dropped before uvicorn's keep-alive timeout (5 s) can close them
    # under a request about to be sent (a client-side race, not the server's error).
    limits = httpx2.Limits(
        max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=2.0
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with (
            service(
                "kithost serve", [*kithost, "serve"], env=env, cwd=ROOT, log_path=work / "serve.log"
            ) as api,
            service(
                "kithost worker", worker, env=env, cwd=ROOT, log_path=work / "worker.log"
            ) as wrk,
        ):
            wait_http(f"{base}/healthz", api)
            with RssSampler({"kithost serve": api.pid, "kithost worker": wrk.pid}) as rss:
                asyncio.run(with_client(limits, base, public_key, f"http://localhost:{port}"))
    finally:
        redis.Redis.from_url(REDIS_URL).delete(queue)
    for name, kib in sorted(rss.peaks.items()):
        emit("load", f"peak RSS: {name}", kib / 1024, "MiB", "sampled from /proc during the run")


async def with_client(limits: httpx2.Limits, base: str, public_key: str, origin: str) -> None:
    async with httpx2.AsyncClient(timeout=30, limits=limits) as client:
        await drive(Site(client, base, public_key, origin))


def main() -> None:
    stop_on_sigterm()
    with FakeOpenAI() as fake, scratch_postgres() as url:
        fake.event_interval_seconds = WORD_SECONDS
        with tempfile.TemporaryDirectory(prefix="kithost-bench-load-") as tmp:
            run(fake, url, Path(tmp))


if __name__ == "__main__":
    main()
