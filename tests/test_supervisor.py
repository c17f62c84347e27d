"""``kithost run``'s supervisor (``kithost.supervisor``) with real processes: a child that
will not stop is killed with every process it started, and children die with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kithost import supervisor

IGNORE_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
STUBBORN = f"""
import subprocess, sys
{IGNORE_TERM}
grandchild = subprocess.Popen([sys.executable, "-c", "{IGNORE_TERM}; time.sleep(60)"])
print(grandchild.pid, flush=True)
time.sleep(60)
"""
"""A service that ignores SIGTERM and started a process of its own that does too: a
``kithost serve`` with several workers held by a long stream, as its supervisor sees it."""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_child_that_does_not_stop_is_killed_with_its_whole_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervisor, "STOP_TIMEOUT_SECONDS", 1.0)
    child = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], start_new_session=True, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    try:
        supervisor.stop({"serve": child})
        assert child.returncode == -signal.SIGKILL
        assert wait_gone(grandchild, 5), "the child's own process outlived it"
    finally:
        for pid in (child.pid, grandchild):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_stop_when_the_supervisor_is_killed() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from kithost import supervisor\n"
            "sleep = 'import time; time.sleep(60)'\n"
            "child = supervisor.start('sleep', sys.executable, '-c', sleep)\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert alive(child)
        parent.kill()
        parent.wait()
        assert wait_gone(child, 5), "the child outlived its killed supervisor"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),  # noqa: S104 (a setting's value)
        ("::", "http://[::1]:8000"),
        ("::1", "http://[::1]:8000"),
        ("localhost", "http://localhost:8000"),
    ],
)
def test_the_api_is_probed_where_this_machine_reaches_it(host: str, url: str) -> None:
    assert supervisor.local_url(host, 8000) == url
