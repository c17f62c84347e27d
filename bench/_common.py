"""Helpers shared by the ``bench_*.py`` scripts (see README.md for the protocol).

Figures go to stdout as one JSON object per line; everything else goes to stderr.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import psycopg

STOP_TIMEOUT_SECONDS = 15.0


def log(message: str) -> None:
    print(f"[{Path(sys.argv[0]).stem}] {message}", file=sys.stderr, flush=True)


def emit(bench: str, figure: str, value: float, unit: str, note: str = "") -> None:
    """Print one figure for ``run.py``."""
    line = {"bench": bench, "figure": figure, "value": value, "unit": unit, "note": note}
    print(json.dumps(line), flush=True)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def stop_on_sigterm() -> None:
    """Turn SIGTERM (``run.py``'s timeout) into SystemExit so ``finally`` blocks stop servers."""
    signal.signal(signal.SIGTERM, _terminate)


def kithost_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """This environment without any ``KITHOST_*`` variable, plus a data dir and ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITHOST_")}
    env["KITHOST_DATA_DIR"] = str(data_dir)
    env.update({f"KITHOST_{key.upper()}": value for key, value in overrides.items()})
    return env


def seed_demo(env: Mapping[str, str]) -> str:
    """Migrate and seed the demo data (``kithost demo``) with ``env``; the demo widget's key."""
    public_key: str = seed_demo_json(env)["widget_public_key"]
    return public_key


def seed_demo_json(env: Mapping[str, str]) -> dict[str, Any]:
    """Migrate and seed the demo data with ``env``; what ``kithost demo --json`` prints (the
    widget's key, the owner's email and password)."""
    subprocess.run([sys.executable, "-m", "kithost", "migrate"], env=env, check=True)
    seeded = subprocess.run(
        [sys.executable, "-m", "kithost", "demo", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    printed: dict[str, Any] = json.loads(seeded.stdout)
    return printed


PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A PostgreSQL database of this run's own (dropped afterwards); its SQLAlchemy URL."""
    name = f"kithost_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


APP_ROLE = "kithost_app"


def app_role_url(owner_url: str) -> str:
    """``owner_url`` for the app's role as production runs it: bound by row-level security
    (no superuser, no BYPASSRLS, owns nothing); made once per cluster. ``migrate.upgrade``
    with this URL as ``database_url`` and ``owner_url`` as ``migration_database_url``
    grants it the tables."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone():
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    return owner_url.replace("://postgres@", f"://{APP_ROLE}@", 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def service(
    name: str, argv: list[str], *, env: Mapping[str, str], cwd: Path, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` in its own process group; stop the whole group on exit, even on failure.

    Output goes to ``log_path``; its tail is shown on stderr when the block fails.
    """
    shown = " ".join(arg if len(arg) < 60 else "<…>" for arg in argv)
    log(f"starting {name}: {shown}")
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        except BaseException:
            _show_tail(name, log_path)
            raise
        finally:
            _stop_group(name, proc)


def _stop_group(name: str, proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(STOP_TIMEOUT_SECONDS)
            break
        except subprocess.TimeoutExpired:
            log(f"{name} ignored SIGTERM for {STOP_TIMEOUT_SECONDS:.0f}s; killing it")
    proc.wait()
    # Children that outlived the group leader (e.g. uvicorn or Celery pool processes).
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _show_tail(name: str, log_path: Path, lines: int = 30) -> None:
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    log(f"last lines of the {name} log ({log_path}):")
    for line in tail:
        print(f"    {line}", file=sys.stderr)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until ``url`` answers 200, or fail if ``proc`` dies or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f}s")


def check_call(argv: list[str], *, env: Mapping[str, str] | None = None, cwd: Path) -> None:
    """Run a short command, its output to stderr; raise if it fails."""
    log(f"running: {' '.join(argv)}")
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=sys.stderr)


def ensure_wrk() -> str:
    """The path of ``wrk``, installing Debian's package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk is missing; installing it: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, stdout=sys.stderr, check=False).returncode != 0:
        log("that failed; running apt-get update and trying again")
        subprocess.run(["apt-get", "update"], env=env, stdout=sys.stderr, check=True)
        subprocess.run(install, env=env, stdout=sys.stderr, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still not on PATH after apt-get install")
    return found


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors plus non-2xx/3xx responses


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def run_wrk(
    url: str,
    *,
    threads: int = 2,
    connections: int = 50,
    seconds: int = 10,
    script: Path | None = None,
) -> WrkResult:
    """Run ``wrk --latency`` (with a Lua ``script`` if given) against ``url``; parse its report."""
    argv = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["-s", str(script), url] if script is not None else [url]
    log(f"running: {' '.join(argv[1:])}")
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    _echo(out, sys.stderr)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", out, re.MULTILINE)
    if not (rps and p50 and p99 and total):
        raise RuntimeError("could not parse the wrk report")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=float(p50.group(1)) * _UNIT_MS[p50.group(2)],
        p99_ms=float(p99.group(1)) * _UNIT_MS[p99.group(2)],
        requests=int(total.group(1)),
        errors=errors,
    )


def _echo(text: str, stream: IO[str]) -> None:
    for line in text.rstrip().splitlines():
        print(f"    {line}", file=stream)
    stream.flush()
