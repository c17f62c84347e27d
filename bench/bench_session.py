"""Latency of ``POST /v1/embed/{pk}/session``, self-hosted and hosted.

The real ``kithost serve`` on a fresh data directory (SQLite, the embedded broker) seeded
by ``kithost demo`` (one published self-hosted widget allowing ``http://localhost:PORT``)
plus a hosted widget under the demo tenant, rate limits raised out of the way. Hosted
widgets call the fake OpenAI server (``tests/fakes/openai_server.py``, answering at once)
on loopback.

- Self-hosted: one wrk connection posts anonymous mints back to back, so the median is
  the latency of one mint (origin check, end user, token signing); then 10 connections
  give the throughput. The issue asks for a median under 2 ms.
- Hosted: the same single-connection run, and one straight at the fake's
  ``/v1/chatkit/sessions`` with the body Kithost sends; the difference of the medians is
  what Kithost adds over the upstream call. The issue asks for at most 2 ms.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.fakes.openai_server import CHATKIT_BETA, FakeOpenAI

from bench._common import (
    WrkResult,
    emit,
    free_port,
    kithost_env,
    run_wrk,
    service,
    stop_on_sigterm,
    wait_http,
)
from kithost.audit.service import CLI
from kithost.db import create_engine, create_sessionmaker, session_scope
from kithost.demo import DEMO_SLUG
from kithost.settings import Settings
from kithost.tenants import repository as tenants
from kithost.widgets.service import create_widget, publish_draft
from kithost.worker.app import create_celery

ROOT = Path(__file__).resolve().parents[1]
MINT = """
wrk.method = "POST"
wrk.body = '{"device_id": "anon_benchbenchbenchbench"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Origin"] = "ORIGIN"
"""
UPSTREAM = """
wrk.method = "POST"
wrk.body = '{"user": "a:anon_benchbenchbenchbench", "workflow": {"id": "wf_bench"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer KEY"
wrk.headers["OpenAI-Beta"] = "BETA"
"""
HOSTED = {"mode": "hosted", "hosted": {"workflow_id": "wf_bench"}}


async def add_hosted_widget(data: Path, origin: str) -> str:
    """A published hosted widget under the demo tenant; its public key."""
    settings = Settings(data_dir=data)
    engine = create_engine(settings.database)
    try:
        async with session_scope(create_sessionmaker(engine, create_celery(settings))) as session:
            tenant = await tenants.get_by_slug(session, DEMO_SLUG)
            assert tenant is not None
            widget = await create_widget(
                session,
                CLI,
                tenant,
                name="Hosted bench",
                config=HOSTED,
                origins=[origin],
                allow_insecure_origins=True,
            )
            await publish_draft(session, CLI, widget, published_by=None)
            return widget.public_key
    finally:
        await engine.dispose()


def single(url: str, script: Path) -> WrkResult:
    run_wrk(url, threads=1, connections=1, seconds=3, script=script)  # warm up
    result = run_wrk(url, threads=1, connections=1, seconds=10, script=script)
    if result.errors:
        raise SystemExit(f"{result.errors} failed requests against {url}")
    return result


def main() -> None:
    stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="kithost-bench-session-") as tmp, FakeOpenAI() as fake:
        data = Path(tmp)
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
        )
        subprocess.run([sys.executable, "-m", "kithost", "migrate"], env=env, check=True)
        seeded = subprocess.run(
            [sys.executable, "-m", "kithost", "demo", "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        self_hosted_key = json.loads(seeded.stdout)["widget_public_key"]
        hosted_key = asyncio.run(add_hosted_widget(data, origin))
        mint = data / "mint.lua"
        mint.write_text(MINT.replace("ORIGIN", origin))
        upstream_script = data / "upstream.lua"
        upstream_script.write_text(
            UPSTREAM.replace("KEY", fake.api_key).replace("BETA", CHATKIT_BETA)
        )
        argv = [sys.executable, "-m", "kithost", "serve"]
        with service("kithost serve", argv, env=env, cwd=ROOT, log_path=data / "serve.log") as api:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz", api)
            url = f"{base}/v1/embed/{self_hosted_key}/session"
            self_hosted = single(url, mint)
            loaded = run_wrk(url, threads=2, connections=10, seconds=10, script=mint)
            hosted = single(f"{base}/v1/embed/{hosted_key}/session", mint)
            upstream = single(f"{fake.base_url}/chatkit/sessions", upstream_script)
    emit(
        "session",
        "mint self-hosted, median (1 connection)",
        self_hosted.p50_ms,
        "ms",
        f"p99 {self_hosted.p99_ms:.1f} ms, wrk -t1 -c1 -d10s",
    )
    emit(
        "session",
        "mint self-hosted, throughput",
        loaded.requests_per_second,
        "req/s",
        f"wrk -t2 -c10 -d10s, median {loaded.p50_ms:.1f} ms, p99 {loaded.p99_ms:.1f} ms, "
        f"{loaded.errors} errors",
    )
    emit(
        "session",
        "mint hosted, added over the upstream call (medians)",
        hosted.p50_ms - upstream.p50_ms,
        "ms",
        f"hosted mint {hosted.p50_ms:.2f} ms, the fake upstream alone {upstream.p50_ms:.2f} ms",
    )


if __name__ == "__main__":
    main()
