"""Analytics: events in through the API, into PostgreSQL through a worker, series out.

1. **ingest API**: the real ``kithost serve`` (one process, SQLite, broker Redis on a queue of
   its own that no worker reads) takes ``POST /v1/embed/{pk}/events`` batches of 50 events
   (``text/plain``, as ``sendBeacon`` sends them) from ``wrk -t2 -c50 -d10s``; the figure is
   accepted events per second (the issue asks for ≥ 20,000), against a trivial FastAPI POST
   endpoint served the same way.
2. **worker → PostgreSQL**: 400 ingest tasks of 50 events each are queued on Redis, then one
   ``kithost worker --concurrency 4`` starts on a fresh PostgreSQL database; the figure is
   events stored per second from the first one in to the last (the issue asks ≥ 10,000).
3. **series query**: 90 days of hourly and daily rollups for 10 widgets standing for
   10 million raw events, in PostgreSQL; ``GET …/analytics/series`` from one wrk connection
   for 10 s per query shape; the figure is the 95th percentile latency (the issue asks
   ≤ 100 ms). Then 8 days of rollups for ``MANY_WIDGETS`` more widgets, and the same for
   ``GET …/analytics/widgets`` (each widget's loads, one query for an agency's 1,010
   widgets): over 7 whole UTC days, as the dashboard's widget list asks (the daily
   rollups), and over the last 168 hours (the hourly ones).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy import insert

from bench._common import (
    check_call,
    emit,
    ensure_wrk,
    free_port,
    kithost_env,
    log,
    scratch_postgres,
    service,
    stop_on_sigterm,
    wait_http,
)
from kithost.analytics import latency
from kithost.auth.oauth import issue_access_token
from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.clients.service import create_client
from kithost.db import create_engine, create_sessionmaker, session_scope
from kithost.kit.crypto import SecretBox
from kithost.models import AnalyticsRollup, RollupPeriod
from kithost.settings import Settings
from kithost.tenants.service import create_tenant
from kithost.users.service import get_or_create_user
from kithost.widgets.service import create_widget, publish_draft
from kithost.worker.app import create_celery
from kithost.worker.enqueue import PendingTasks

REDIS_URL = "redis://127.0.0.1:6379/0"
ORIGIN = "https://shop.example.com"
SECRET_KEY = "bench-secret-key"  # noqa: S105 (a throwaway data directory's key)
PUBLIC_URL = "http://kithost.bench"
"""Tokens are issued for this URL: the seeding and the server must agree on it."""
BATCH = 50
TASKS = 400
WIDGETS = 10
DAYS = 90
RAW_EVENTS = 10_000_000
MANY_WIDGETS = 1000

# args: method, Origin (or "-"), Authorization (or "-"), body file (or "-"). Prints one JSON
# line when done: requests, seconds, latency percentiles (ms), errors (any non-2xx counts).
WRK_SCRIPT = """
init = function(args)
  wrk.method = args[1]
  if args[2] ~= "-" then wrk.headers["Origin"] = args[2] end
  if args[3] ~= "-" then wrk.headers["Authorization"] = args[3] end
  if args[4] ~= "-" then
    local f = io.open(args[4], "rb")
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, ' ..
    '"errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""

BASELINE_APP = """
import sys
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from kithost.cli import UVICORN_OPTIONS

app = FastAPI()


@app.post("/events")
async def events(request: Request) -> Response:
    await request.body()
    return Response('{"accepted": 50, "dropped": []}', 202, media_type="application/json")


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, **UVICORN_OPTIONS)
"""


def wrk(
    url: str,
    script: Path,
    *,
    method: str,
    origin: str = "-",
    auth: str = "-",
    body: Path | None = None,
    threads: int = 2,
    connections: int = 50,
    seconds: int = 10,
) -> dict[str, Any]:
    argv = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script)]
    log(f"running: wrk {' '.join(argv[1:])} {url}")
    args = [method, origin, auth, str(body) if body else "-"]
    done = subprocess.run([*argv, url, "--", *args], capture_output=True, text=True, check=True)
    print(done.stdout.rstrip(), file=sys.stderr)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{url}: {result['errors']} of {result['requests']} requests failed")
    result["rps"] = result["requests"] / result["seconds"]
    return result


def batch_body(path: Path) -> None:
    now = int(time.time() * 1000)
    events = [
        {
            "id": f"ev_{secrets.token_hex(8)}",
            "name": "chatkit.log",
            "time": now,
            "data": {"name": "response.delta", "n": i},
        }
        for i in range(BATCH)
    ]
    path.write_text(json.dumps({"end_user": "a:anon_benchbenchbench", "events": events}))


async def seed(settings: Settings) -> dict[str, Any]:
    """A tenant, a published widget allowing ``ORIGIN``, an analytics:read token."""
    engine = create_engine(settings.database)
    try:
        sessionmaker = create_sessionmaker(engine, PendingTasks(create_celery(settings)))
        async with session_scope(sessionmaker) as session:
            owner = await get_or_create_user(session, CLI, "owner@bench.test")
            tenant = await create_tenant(session, CLI, slug="bench", name="Bench", owner=owner.user)
            widget = await create_widget(session, CLI, tenant, name="Bench", origins=[ORIGIN])
            await publish_draft(session, CLI, widget, published_by=None)
            new = await create_client(session, CLI, tenant, name="b", scopes=[Scope.analytics_read])
            token = await issue_access_token(
                session, settings, SecretBox(settings.keys()), new.client, [Scope.analytics_read]
            )
            return {
                "tenant_id": tenant.id,
                "widget_id": widget.id,
                "public_key": widget.public_key,
                "token": token,
            }
    finally:
        await engine.dispose()


def api_ingest(work: Path, script: Path) -> None:
    body = work / "batch.json"
    batch_body(body)

    port = free_port()
    argv = [sys.executable, "-c", BASELINE_APP, str(port)]
    with service(
        "baseline", argv, env=kithost_env(work / "unused"), cwd=work, log_path=work / "baseline.log"
    ) as proc:
        wait_http(f"http://127.0.0.1:{port}/docs", proc)
        base = wrk(f"http://127.0.0.1:{port}/events", script, method="POST", body=body)

    data_dir = work / "api"
    queue = f"bench-events-{secrets.token_hex(4)}"
    port = free_port()
    env = kithost_env(
        data_dir, port=str(port), broker_url=REDIS_URL, task_queue=queue, secret_key=SECRET_KEY
    )
    kithost = [sys.executable, "-m", "kithost"]
    check_call([*kithost, "migrate"], env=env, cwd=work)
    settings = Settings(_env_file=None, data_dir=data_dir, secret_key=SECRET_KEY)
    seeded = asyncio.run(seed(settings))
    url = f"http://127.0.0.1:{port}/v1/embed/{seeded['public_key']}/events"
    try:
        with service(
            "kithost serve", [*kithost, "serve"], env=env, cwd=work, log_path=work / "serve.log"
        ) as proc:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
            result = wrk(url, script, method="POST", origin=ORIGIN, body=body)
        queued = redis.Redis.from_url(REDIS_URL).llen(queue)
    finally:
        redis.Redis.from_url(REDIS_URL).delete(queue)
    # wrk stops counting with requests still in flight: those were queued too.
    if queued < result["requests"]:
        raise RuntimeError(f"{result['requests']} batches accepted, {queued} tasks queued")
    note = (
        f"wrk -t2 -c50 -d10s, batches of {BATCH}, p99 {result['p99_ms']:.1f} ms, "
        f"{queued} tasks on Redis"
    )
    emit("events", "API accepts events", round(result["rps"] * BATCH), "events/s", note)
    emit(
        "events",
        "baseline: FastAPI POST endpoint",
        round(base["rps"], 1),
        "req/s",
        f"p99 {base['p99_ms']:.1f} ms",
    )
    emit(
        "events",
        "events API vs FastAPI",
        round(100 * result["rps"] / base["rps"], 1),
        "%",
        "req/s ratio",
    )


def stored(conn: psycopg.Connection[Any], tenant_id: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT count(*) FROM analytics_events WHERE tenant_id = %s", [tenant_id]
    ).fetchone()
    return int(row[0]) if row else 0


def worker_ingest(work: Path, settings: Settings, seeded: dict[str, Any]) -> None:
    queue = f"bench-ingest-{secrets.token_hex(4)}"
    env = kithost_env(
        work / "worker",
        database_url=settings.database,
        broker_url=REDIS_URL,
        task_queue=queue,
        secret_key=SECRET_KEY,
        log_level="WARNING",
    )
    worker_settings = settings.model_copy(update={"task_queue": queue})
    celery = create_celery(worker_settings)
    argv = [sys.executable, "-m", "kithost", "worker", "--concurrency=4"]
    now = int(time.time() * 1000)
    args = [str(seeded["tenant_id"]), str(seeded["widget_id"])]
    total = TASKS * BATCH
    pg_url = settings.database.replace("postgresql+psycopg://", "postgresql://")
    try:
        # Queued before the worker starts: the sending would compete with the worker for
        # this machine's two cores (in production the API runs elsewhere).
        for t in range(TASKS):
            events = [
                {
                    "id": f"bench_{t}_{i}",
                    "name": "server.message.received",
                    "time": now,
                    "end_user": f"u:user-{i}",
                    "data": {"thread_id": f"th_{t}"},
                }
                for i in range(BATCH)
            ]
            celery.send_task("kithost.analytics.ingest", args=[*args, events])
        with (
            service("worker", argv, env=env, cwd=work, log_path=work / "worker.log"),
            psycopg.connect(pg_url, autocommit=True) as conn,
        ):
            deadline = time.monotonic() + 300
            while (first := stored(conn, seeded["tenant_id"])) == 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker stored nothing within 300 s")
                time.sleep(0.01)
            started = time.monotonic()
            while (count := stored(conn, seeded["tenant_id"])) < total:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {count} of {total} events stored after 300 s")
                time.sleep(0.05)
            elapsed = time.monotonic() - started
    finally:
        redis.Redis.from_url(REDIS_URL).delete(queue)
        celery.close()
    emit(
        "events",
        "worker writes into PostgreSQL",
        round((total - first) / elapsed),
        "events/s",
        f"{TASKS} tasks of {BATCH} queued first, one worker --concurrency 4, Redis broker",
    )


async def fill_rollups(
    settings: Settings, tenant_id: uuid.UUID, widget_count: int = WIDGETS, days: int = DAYS
) -> None:
    """Hourly and daily rollups for ``widget_count`` widgets over ``days`` days, each hour of
    a widget as many events as ``RAW_EVENTS`` raw events over ``WIDGETS`` widgets and
    ``DAYS`` days would give it."""
    per_hour = RAW_EVENTS // (WIDGETS * DAYS * 24)
    hist = latency.histogram([300, 450, 800, 1200, 2500])
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first_day = (end - timedelta(days=days)).replace(hour=0)
    widgets = [uuid.uuid4() for _ in range(widget_count)]

    def row(period: RollupPeriod, start: datetime, widget: uuid.UUID, k: int) -> dict[str, Any]:
        counts = {
            m: k * per_hour // 10
            for m in (
                "opens",
                "sessions",
                "threads",
                "messages",
                "responses",
                "feedback_up",
                "end_users",
            )
        }
        return {
            "tenant_id": tenant_id,
            "period": period,
            "start": start,
            "widget_id": widget,
            "loads": k * per_hour,
            "tokens_in": k * per_hour * 50,
            "tokens_out": k * per_hour * 20,
            "feedback_down": 0,
            "client_errors": k,
            **counts,
            "first_token_ms": [k * n for n in hist],
            "total_ms": [k * n for n in hist],
        }

    engine = create_engine(settings.database)
    try:
        async with engine.begin() as conn:
            rows = []
            for h in range(days * 24):
                start = first_day + timedelta(hours=h)
                rows += [row(RollupPeriod.hour, start, w, 1) for w in widgets]
            for d in range(days):
                start = first_day + timedelta(days=d)
                rows += [row(RollupPeriod.day, start, w, 24) for w in widgets]
            for i in range(0, len(rows), 5000):
                await conn.execute(insert(AnalyticsRollup), rows[i : i + 5000])
            await conn.exec_driver_sql("ANALYZE analytics_rollups")
        log(f"{len(rows):,} rollup rows of {widget_count} widgets over {days} days")
    finally:
        await engine.dispose()


def series_queries(work: Path, script: Path, settings: Settings, seeded: dict[str, Any]) -> None:
    asyncio.run(fill_rollups(settings, seeded["tenant_id"]))
    port = free_port()
    env = kithost_env(
        work / "serve-pg",
        database_url=settings.database,
        port=str(port),
        broker_url=REDIS_URL,
        secret_key=SECRET_KEY,
        public_url=PUBLIC_URL,
    )
    since = (datetime.now(UTC) - timedelta(days=DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    month = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    shapes = {
        "series p95: loads per day, 90 days, UTC": f"series?metric=loads&since={since}",
        "series p95: loads per hour, 30 days, Europe/Paris": "series?metric=loads&interval=hour"
        f"&tz=Europe/Paris&since={month}",
        "series p95: total p95 per day, 90 days": f"series?metric=total_p95&since={since}",
    }
    base = f"http://127.0.0.1:{port}/api/v1/tenants/bench/analytics/"
    with service(
        "kithost serve (PostgreSQL)",
        [sys.executable, "-m", "kithost", "serve"],
        env=env,
        cwd=work,
        log_path=work / "serve-pg.log",
    ) as proc:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)

        def p95(name: str, query: str, widgets: int) -> None:
            result = wrk(
                base + query,
                script,
                method="GET",
                auth=f"Bearer {seeded['token']}",
                threads=1,
                connections=1,
                seconds=10,
            )
            note = (
                f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                f"wrk -t1 -c1 -d10s, {widgets:,} widgets"
            )
            emit("events", name, round(result["p95_ms"], 1), "ms", note)

        for name, query in shapes.items():
            p95(name, query, WIDGETS)
        # The dashboard's widget list of an agency: its loads per widget, one query.
        asyncio.run(fill_rollups(settings, seeded["tenant_id"], MANY_WIDGETS, days=8))
        tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        tomorrow += timedelta(days=1)
        days = f"since={(tomorrow - timedelta(days=7)):%Y-%m-%dT%H:%M:%SZ}"
        days += f"&until={tomorrow:%Y-%m-%dT%H:%M:%SZ}"
        totals = {
            "per-widget totals p95: loads, 7 UTC days (daily rollups)": days,
            "per-widget totals p95: loads, the last 168 hours (hourly rollups)": "",
        }
        for name, query in totals.items():
            p95(name, f"widgets?metric=loads&{query}", WIDGETS + MANY_WIDGETS)


def main() -> int:
    stop_on_sigterm()
    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="kithost-bench-events-") as tmp:
        work = Path(tmp)
        script = work / "events.lua"
        script.write_text(WRK_SCRIPT)
        api_ingest(work, script)

        with scratch_postgres() as url:
            settings = Settings(
                _env_file=None,
                data_dir=work / "pg",
                database_url=url,
                broker_url=REDIS_URL,
                secret_key=SECRET_KEY,
                public_url=PUBLIC_URL,
            )
            env = kithost_env(work / "pg", database_url=url)
            check_call([sys.executable, "-m", "kithost", "migrate"], env=env, cwd=work)
            seeded = asyncio.run(seed(settings))
            worker_ingest(work, settings, seeded)
            series_queries(work, script, settings, seeded)
    return 0


if __name__ == "__main__":
    sys.exit(main())
