"""Throughput of ``GET /v1/embed/{pk}/config`` against a trivial FastAPI JSON endpoint.

Both servers run one process with the uvicorn options of ``kithost serve``
(``kithost.cli.UVICORN_OPTIONS``, no access log) and get the same wrk load, with an
``Origin`` header set by a wrk Lua script that also reports the figures as JSON. The config
endpoint is the real ``kithost serve`` on a fresh data directory (SQLite) holding one
published widget that allows the origin; the issue asks for at least 80% of the baseline.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from bench._common import (
    check_call,
    emit,
    ensure_wrk,
    free_port,
    kithost_env,
    log,
    service,
    stop_on_sigterm,
    wait_http,
)
from kithost.auth.principals import CLI
from kithost.db import create_engine, create_sessionmaker, session_scope
from kithost.settings import Settings
from kithost.tenants.service import create_tenant
from kithost.users.service import get_or_create_user
from kithost.widgets.service import create_widget, publish_draft
from kithost.worker.app import create_celery
from kithost.worker.enqueue import PendingTasks

THREADS, CONNECTIONS, SECONDS = 2, 50, 10
ORIGIN = "https://shop.example.com"

BASELINE_APP = """
import sys
import uvicorn
from fastapi import FastAPI
from kithost.cli import UVICORN_OPTIONS
from kithost.worker.enqueue import PendingTasks

app = FastAPI()


@app.get("/config")
async def config() -> dict[str, str]:
    return {"status": "ok"}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, **UVICORN_OPTIONS)
"""

# Sends the Origin header given after ``--`` and prints one JSON line when wrk is done.
WRK_SCRIPT = """
init = function(args)
  wrk.headers["Origin"] = args[1]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "p99_ms": %.3f, "errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def seed(data_dir: Path) -> str:
    """Publish a default widget that allows ``ORIGIN``; returns its public key."""
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=None, broker_url=None)

    async def run() -> str:
        engine = create_engine(settings.database)
        try:
            sessionmaker = create_sessionmaker(engine, PendingTasks(create_celery(settings)))
            async with session_scope(sessionmaker) as session:
                owner = await get_or_create_user(session, CLI, "owner@bench.test")
                tenant = await create_tenant(
                    session, CLI, slug="bench", name="Bench", owner=owner.user
                )
                widget = await create_widget(session, CLI, tenant, name="Bench", origins=[ORIGIN])
                await publish_draft(session, CLI, widget, published_by=None)
                return widget.public_key
        finally:
            await engine.dispose()

    return asyncio.run(run())


def check_allowed(url: str) -> None:
    request = urllib.request.Request(url, headers={"Origin": ORIGIN})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        if response.headers["Access-Control-Allow-Origin"] != ORIGIN:
            raise RuntimeError(f"{url} did not allow {ORIGIN}")


def measure(name: str, url: str, script: Path) -> float:
    """Load ``url`` with wrk, emit req/s, and return it; fail on any error."""
    argv = [ensure_wrk(), f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-s", str(script)]
    log(f"running: wrk {' '.join(argv[1:])} {url}")
    done = subprocess.run([*argv, url, "--", ORIGIN], capture_output=True, text=True, check=True)
    out = done.stdout
    print(out.rstrip(), file=sys.stderr)
    result = json.loads(out.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{name}: {result['errors']} of {result['requests']} requests failed")
    rps = result["requests"] / result["seconds"]
    note = (
        f"wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s, Origin set, p99 {result['p99_ms']:.1f} ms"
    )
    emit("config", name, round(rps, 1), "req/s", note)
    return float(rps)


def main() -> int:
    stop_on_sigterm()
    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="kithost-bench-config-") as tmp:
        work = Path(tmp)
        script = work / "origin.lua"
        script.write_text(WRK_SCRIPT)

        name = "baseline: FastAPI JSON endpoint"
        port = free_port()
        argv = [sys.executable, "-c", BASELINE_APP, str(port)]
        env = kithost_env(work / "unused")
        with service(name, argv, env=env, cwd=work, log_path=work / "baseline.log") as proc:
            url = f"http://127.0.0.1:{port}/config"
            wait_http(url, proc)
            baseline = measure(name, url, script)

        data_dir = work / "data"
        port = free_port()
        env = kithost_env(data_dir, port=str(port))
        kithost = [sys.executable, "-m", "kithost"]
        check_call([*kithost, "migrate"], env=env, cwd=work)
        public_key = seed(data_dir)
        with service(
            "kithost serve", [*kithost, "serve"], env=env, cwd=work, log_path=work / "serve.log"
        ) as proc:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz", proc)
            url = f"{base}/v1/embed/{public_key}/config"
            check_allowed(url)
            config = measure("GET /v1/embed/{pk}/config", url, script)

    ratio = round(100 * config / baseline, 1)
    emit("config", "config vs FastAPI", ratio, "%", "req/s ratio; the issue asks for at least 80")
    return 0


if __name__ == "__main__":
    sys.exit(main())
