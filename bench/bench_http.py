"""HTTP throughput of ``kithost serve`` (/healthz, /readyz) against baselines in the same run.

Two baselines answer /healthz with the same JSON body, served by uvicorn with the options
``kithost serve`` uses (httptools, uvloop, one process, no access log): a bare ASGI function
(the ceiling of the server and of wrk on this box) and a bare FastAPI app (the framework, without
Kithost's middleware and logging).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench._common import (
    check_call,
    emit,
    ensure_wrk,
    free_port,
    kithost_env,
    log,
    run_wrk,
    service,
    stop_on_sigterm,
    wait_http,
)

THREADS, CONNECTIONS, SECONDS = 2, 50, 10
BASELINES = (("asgi", "baseline: bare ASGI app"), ("fastapi", "baseline: FastAPI app"))

BASELINE_APPS = """
import sys
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

BODY = b'{"status":"ok"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def asgi(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


class Health(BaseModel):
    status: str = "ok"


fastapi = FastAPI()


@fastapi.get("/healthz")
async def healthz() -> Health:
    return Health()


uvicorn.run(
    {"asgi": asgi, "fastapi": fastapi}[sys.argv[1]], host="127.0.0.1", port=int(sys.argv[2]),
    http="httptools", loop="uvloop", log_config=None, proxy_headers=True, server_header=False,
)
"""


def measure(name: str, url: str) -> tuple[float, int]:
    """Load ``url`` with wrk, emit req/s, and return it with the error count."""
    result = run_wrk(url, threads=THREADS, connections=CONNECTIONS, seconds=SECONDS)
    note = f"wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s, p99 {result.p99_ms:.1f} ms"
    if result.errors:
        note += f", {result.errors} errors of {result.requests} requests"
    emit("http", name, round(result.requests_per_second, 1), "req/s", note)
    return result.requests_per_second, result.errors


def percent(figure: str, part: float, whole: float) -> None:
    emit("http", figure, round(100 * part / whole, 1), "%", "req/s ratio")


def main() -> int:
    stop_on_sigterm()
    ensure_wrk()
    rps: dict[str, float] = {}
    errors = 0
    with tempfile.TemporaryDirectory(prefix="kithost-bench-http-") as tmp:
        work = Path(tmp)
        for kind, name in (
            ("asgi", "baseline: bare ASGI app"),
            ("fastapi", "baseline: FastAPI app"),
        ):
            port = free_port()
            argv = [sys.executable, "-c", BASELINE_APPS, kind, str(port)]
            env = kithost_env(work / "unused")
            with service(name, argv, env=env, cwd=work, log_path=work / f"{kind}.log") as proc:
                url = f"http://127.0.0.1:{port}/healthz"
                wait_http(url, proc)
                rps[kind], failed = measure(name, url)
                errors += failed

        port = free_port()
        env = kithost_env(work / "data", port=str(port))
        kithost = [sys.executable, "-m", "kithost"]
        check_call([*kithost, "migrate"], env=env, cwd=work)
        log_path = work / "serve.log"
        with service(
            "kithost serve", [*kithost, "serve"], env=env, cwd=work, log_path=log_path
        ) as proc:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/readyz", proc)
            for path in ("/healthz", "/readyz"):
                rps[path], failed = measure(f"GET {path}", base + path)
                errors += failed

    percent("/healthz vs bare ASGI", rps["/healthz"], rps["asgi"])
    percent("/healthz vs FastAPI", rps["/healthz"], rps["fastapi"])
    percent("/readyz vs /healthz", rps["/readyz"], rps["/healthz"])
    if errors:
        log(f"{errors} requests failed; the figures above are not trustworthy")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
