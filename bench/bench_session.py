"""Latency of ``POST /v1/embed/{pk}/session``, self-hosted and hosted.

The real ``kithost serve`` on a fresh data directory (SQLite, the embedded broker) seeded
by ``kithost demo`` (one published self-hosted widget allowing ``http://localhost:PORT``)
plus a hosted widget under the demo tenant, rate limits raised out of the way. Hosted
widgets call the fake OpenAI server (``tests/fakes/openai_server.py``, answering at once)
on loopback.

- Self-hosted: one wrk connection posts anonymous mints back to back, so the median is
  the latency of one mint (origin check, end user, token signing); then 10 connections
  give the throughput. The issue asks for a median under 2 ms.
- Hosted: the same single-connection run, and the upstream call alone: the same
  ``client.beta.chatkit.sessions.create`` Kithost makes (``openai``'s ``AsyncOpenAI``, one
  at a time from this process). The difference of the medians is what Kithost adds over
  the upstream call. The issue asks for at most 2 ms.

Then the single-connection runs again with PostgreSQL (a scratch database) instead of
SQLite: the production database, where hosted mints write their ``session_mints`` row.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI

from bench._common import (
    WrkResult,
    emit,
    free_port,
    kithost_env,
    run_wrk,
    scratch_postgres,
    seed_demo,
    service,
    stop_on_sigterm,
    wait_http,
)
from kithost.auth import repository as auth_repository
from kithost.auth.principals import CLI
from kithost.db import create_engine, create_sessionmaker, session_scope
from kithost.demo import DEMO_SLUG
from kithost.sessions import hosted_chatkit
from kithost.settings import Settings
from kithost.widgets.config import Hosted, WidgetConfig
from kithost.widgets.service import create_widget, publish_draft
from kithost.worker.app import create_celery
from kithost.worker.enqueue import PendingTasks

ROOT = Path(__file__).resolve().parents[1]
MINT = """
wrk.method = "POST"
wrk.body = '{"device_id": "anon_benchbenchbenchbench", "embedder": "ORIGIN"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Origin"] = "ORIGIN"
"""
HOSTED = {"mode": "hosted", "hosted": {"workflow_id": "wf_bench"}}
UPSTREAM_CALLS = 2000


async def add_hosted_widget(data: Path, database_url: str | None, origin: str) -> str:
    """A published hosted widget under the demo tenant; its public key. Its config is stored
    past the service's checks: hosted widgets exist only from before OpenAI's Agent Builder
    shutdown (2026-11-30), and still mint for as long as OpenAI runs their workflow."""
    settings = Settings(data_dir=data, database_url=database_url)
    engine = create_engine(settings.database)
    try:
        async with session_scope(
            create_sessionmaker(engine, PendingTasks(create_celery(settings)))
        ) as session:
            tenant = await auth_repository.tenant_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            widget = await create_widget(
                session,
                CLI,
                tenant,
                name="Hosted bench",
                origins=[origin],
                allow_insecure_origins=True,
            )
            widget.draft = WidgetConfig.model_validate(HOSTED).model_dump(mode="json")
            await publish_draft(session, CLI, widget, published_by=None)
            return widget.public_key
    finally:
        await engine.dispose()


async def upstream_median_ms(fake: FakeOpenAI) -> float:
    """The median of the upstream call alone, made the way ``sessions.hosted_chatkit`` makes it."""
    workflow = Hosted.model_validate(HOSTED["hosted"])
    durations = []
    for _ in range(UPSTREAM_CALLS):
        started = time.perf_counter()
        await hosted_chatkit.create_chatkit_session(
            api_key=fake.api_key,
            base_url=fake.base_url,
            timeout_seconds=10,
            hosted=workflow,
            user="a:anon_benchbenchbenchbench",
            state_variables={},
        )
        durations.append((time.perf_counter() - started) * 1000)
    return statistics.median(durations)


def single(url: str, script: Path) -> WrkResult:
    run_wrk(url, threads=1, connections=1, seconds=3, script=script)  # warm up
    result = run_wrk(url, threads=1, connections=1, seconds=10, script=script)
    if result.errors:
        raise SystemExit(f"{result.errors} failed requests against {url}")
    return result


@dataclass(frozen=True)
class Mints:
    self_hosted: WrkResult
    hosted: WrkResult
    loaded: WrkResult | None


def measure(data: Path, fake: FakeOpenAI, database_url: str | None, *, load: bool) -> Mints:
    """``kithost serve`` on ``database_url`` (SQLite in ``data`` when None), seeded; one
    connection minting for each widget, and (``load``) ten minting self-hosted sessions."""
    port = free_port()
    origin = f"http://localhost:{port}"
    env = kithost_env(
        data,
        port=str(port),
        log_level="WARNING",
        mint_limit_per_client="100000000",
        mint_limit_per_user="100000000",
        openai_base_url=fake.base_url,
        openai_api_key=fake.api_key,
        **({"database_url": database_url} if database_url else {}),
    )
    self_hosted_key = seed_demo(env)
    hosted_key = asyncio.run(add_hosted_widget(data, database_url, origin))
    mint = data / "mint.lua"
    mint.write_text(MINT.replace("ORIGIN", origin))
    argv = [sys.executable, "-m", "kithost", "serve"]
    with service("kithost serve", argv, env=env, cwd=ROOT, log_path=data / "serve.log") as api:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", api)
        url = f"{base}/v1/embed/{self_hosted_key}/session"
        self_hosted = single(url, mint)
        loaded = run_wrk(url, threads=2, connections=10, seconds=10, script=mint) if load else None
        hosted_mint = single(f"{base}/v1/embed/{hosted_key}/session", mint)
    return Mints(self_hosted, hosted_mint, loaded)


def main() -> None:
    stop_on_sigterm()
    with (
        tempfile.TemporaryDirectory(prefix="kithost-bench-session-") as tmp,
        FakeOpenAI() as fake,
    ):
        sqlite = measure(Path(tmp) / "sqlite", fake, None, load=True)
        with scratch_postgres() as url:
            postgres = measure(Path(tmp) / "postgresql", fake, url, load=False)
        upstream = asyncio.run(upstream_median_ms(fake))
    assert sqlite.loaded is not None
    for database, mints in (("SQLite", sqlite), ("PostgreSQL", postgres)):
        emit(
            "session",
            f"mint self-hosted, median (1 connection), {database}",
            mints.self_hosted.p50_ms,
            "ms",
            f"p99 {mints.self_hosted.p99_ms:.1f} ms, wrk -t1 -c1 -d10s",
        )
        emit(
            "session",
            f"mint hosted, added over the upstream call (medians), {database}",
            mints.hosted.p50_ms - upstream,
            "ms",
            f"hosted mint {mints.hosted.p50_ms:.2f} ms (p99 {mints.hosted.p99_ms:.1f} ms), "
            f"the upstream call alone {upstream:.2f} ms",
        )
    loaded = sqlite.loaded
    emit(
        "session",
        "mint self-hosted, throughput, SQLite",
        loaded.requests_per_second,
        "req/s",
        f"wrk -t2 -c10 -d10s, median {loaded.p50_ms:.1f} ms, p99 {loaded.p99_ms:.1f} ms, "
        f"{loaded.errors} errors",
    )


if __name__ == "__main__":
    main()
