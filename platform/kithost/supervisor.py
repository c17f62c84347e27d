"""``kithost run``: the API, a worker and beat as child processes of one command.

Children run in their own process groups, so Ctrl-C reaches only this supervisor, which
stops them in order and waits for them. If one child dies, the others are stopped too.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from types import FrameType

from kithost.demo import DEMO_OWNER
from kithost.settings import Settings

STOP_TIMEOUT_SECONDS = 15.0
SERVICES = ("serve", "worker", "beat")


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signum)


def run_all(settings: Settings) -> int:
    """Run until a signal or a child's exit; return the exit status for the command."""
    children: dict[str, subprocess.Popen[bytes]] = {}
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for service in SERVICES:
            children[service] = subprocess.Popen(  # noqa: S603 (our own interpreter)
                [sys.executable, "-m", "kithost", service], start_new_session=True
            )
        _announce(settings, children["serve"])
        while True:
            for service, child in children.items():
                if child.poll() is not None:
                    print(f"kithost {service} exited with {child.returncode}; stopping.")
                    return child.returncode or 1
            time.sleep(0.5)
    except _Stop:
        print("\nStopping Kithost…")
        return 0
    finally:
        _stop(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _announce(settings: Settings, api: subprocess.Popen[bytes]) -> None:
    url = f"http://{settings.host}:{settings.port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and api.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):  # noqa: S310
                break
        except OSError:
            time.sleep(0.2)
    base = settings.base_url
    demo = f"  Demo       {base}/demo\n" if settings.demo_page_on else ""
    metrics = (
        f"{base}/metrics"
        if settings.metrics_port is None
        else f"http://{settings.host}:{settings.metrics_port}/metrics"
    )
    print(
        "\nKithost is running (Ctrl-C stops it):\n"
        f"  Dashboard  {base}/admin/\n"
        f"             sign in as {DEMO_OWNER} (the password is printed once, when the\n"
        "             demo is first seeded: see above on the first run)\n"
        f"{demo}"
        f"  API        {base}/api/v1/docs\n"
        f"  Health     {base}/healthz  {base}/readyz  {metrics}\n"
        f"  Data       {settings.data_dir.resolve()}\n",
        flush=True,
    )


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
