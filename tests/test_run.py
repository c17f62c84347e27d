"""``make run``: the front ends built, then ``kithost run``: every service up, then a clean
stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow

READY_LINE = "Kithost is running"
ROOT = Path(__file__).resolve().parents[1]


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def start(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    env = {**os.environ, "KITHOST_DATA_DIR": str(data_dir), "KITHOST_PORT": str(port)}
    for name in ("KITHOST_DATABASE_URL", "KITHOST_BROKER_URL", "KITHOST_RESULT_BACKEND"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "kithost", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if READY_LINE in line:
            for _ in range(7):
                lines.append(process.stdout.readline().rstrip())
            return process, lines
    process.kill()
    raise AssertionError("kithost run never became ready:\n" + "\n".join(lines))


def running() -> set[int]:
    return {int(p.name) for p in Path("/proc").glob("[0-9]*")}


def stop(process: subprocess.Popen[str], sig: signal.Signals = signal.SIGINT) -> int:
    """Stop ``kithost run`` with ``sig`` (SIGINT: Ctrl-C; SIGHUP: its terminal closed)."""
    children = children_of(process.pid)
    assert len(children) == 3, "api, worker and beat run as children"
    process.send_signal(sig)
    returncode = process.wait(timeout=60)
    assert not children & running()
    return returncode


def test_run_serves_everything_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    process, lines = start(tmp_path, port)
    try:
        output = "\n".join(lines)
        password = re.search(r"with the password (\S+) \(shown this once\)", output)
        assert password, output
        assert f"http://localhost:{port}/healthz" in output
        assert f"http://localhost:{port}/demo" in output
        assert f"http://localhost:{port}/admin/" in output
        assert "owner@demo.kithost.test" in output
        base = f"http://127.0.0.1:{port}"
        assert httpx2.get(f"{base}/healthz").status_code == 200
        login = httpx2.post(
            f"{base}/api/v1/auth/login",
            json={"email": "owner@demo.kithost.test", "password": password[1]},
        )
        assert login.status_code == 200, login.text
        demo = httpx2.get(f"{base}/demo")
        assert demo.status_code == 200
        assert f'src="http://localhost:{port}/embed/pk_' in demo.text
        assert httpx2.get(f"{base}/readyz").status_code == 200
        metrics = httpx2.get(f"{base}/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "kithost_http_requests_total" in metrics.text
    finally:
        assert stop(process) == 0
    assert (tmp_path / "kithost.db").exists()

    again, lines = start(tmp_path, port)
    try:
        output = "\n".join(lines)
        assert "with the password" not in output
        assert "kithost demo --new-password" in output
    finally:
        # The terminal closing stops it as Ctrl-C does: nothing is left holding the port.
        assert stop(again, signal.SIGHUP) == 0
    with socket.socket() as free:  # as a server binds it (closed connections may linger)
        free.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        free.bind(("127.0.0.1", port))
        free.listen()


def test_make_run_builds_the_front_ends_then_runs_kithost() -> None:
    """README's first command: it builds both front ends, then runs the ``kithost run`` the
    test above starts (``make`` only prints what it would run here)."""
    dry_run = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    *before, last = dry_run
    assert last == ".venv/bin/kithost run"
    assert {"cd embed && npm run build", "cd admin-ui && npm run build"} <= set(before)


def test_make_run_needs_neither_the_browser_tests_chromium_nor_helm() -> None:
    """A newcomer's ``make run`` installs what running needs: not the tests' Chromium (apt,
    as root) nor helm (fetched from npm), which ``make install`` adds for ``make test``."""
    everything = subprocess.run(
        ["make", "--always-make", "--dry-run", "--no-print-directory", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "pip install" in everything
    assert "npm ci" in everything
    assert "chromium" not in everything
    assert "helm" not in everything
