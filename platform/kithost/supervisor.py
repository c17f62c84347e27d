"""``kithost run``: the API, a worker and beat as child processes of one command.

Children run in their own process groups, so Ctrl-C reaches only this supervisor, which
stops them in order and waits for them. If one child dies, the others are stopped too; so
they are when the terminal goes away (SIGHUP) and, on Linux, when the supervisor itself is
killed (each child asks the kernel for SIGTERM when its parent dies). A child that does not
stop in time is killed with every process of its group (a ``kithost serve`` with several
workers, a worker's pool), so nothing keeps the ports or the queue.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from ipaddress import ip_address
from types import FrameType

from kithost.demo import DEMO_OWNER
from kithost.settings import Settings

STOP_TIMEOUT_SECONDS = 15.0
SERVICES = ("serve", "worker", "beat")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What stops ``kithost run``: Ctrl-C, ``kill``, and the terminal closing."""

PR_SET_PDEATHSIG = 1


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signum)


def run_all(settings: Settings, *, owner_password: str | None = None) -> int:
    """Run until a signal or a child's exit; return the exit status for the command.
    ``owner_password``: the demo owner's, when this run created it (shown once)."""
    children: dict[str, subprocess.Popen[bytes]] = {}
    previous = {s: signal.signal(s, _raise_stop) for s in STOP_SIGNALS}
    try:
        for service in SERVICES:
            children[service] = start(service)
        _announce(settings, children["serve"], owner_password)
        while True:
            for service, child in children.items():
                if child.poll() is not None:
                    print(f"kithost {service} exited with {child.returncode}; stopping.")
                    return child.returncode or 1
            time.sleep(0.5)
    except _Stop:
        print("\nStopping Kithost… (Ctrl-C again stops it at once)", flush=True)
        return 0
    finally:
        stop(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def start(service: str, *argv: str) -> subprocess.Popen[bytes]:
    """``kithost SERVICE`` (or ``argv``, a command of its own) as a child in its own session,
    which the kernel stops when this process dies (Linux)."""
    command = list(argv) or [sys.executable, "-m", "kithost", service]
    return subprocess.Popen(  # noqa: S603 (our own interpreter)
        command, start_new_session=True, preexec_fn=_dies_with_parent(os.getpid())
    )


def _dies_with_parent(parent: int) -> Callable[[], None] | None:
    """What a child runs before its program: SIGTERM when ``parent`` dies (and at once if it
    died meanwhile). None where the kernel has no such request."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def ask() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return ask


def local_url(host: str, port: int) -> str:
    """The URL this machine reaches ``kithost serve`` at when it listens on ``host``: a
    wildcard address (every interface) is reached on loopback, an IPv6 one in brackets."""
    try:
        address = ip_address(host)
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:
        address = ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"http://[{address}]:{port}" if address.version == 6 else f"http://{address}:{port}"


def _announce(settings: Settings, api: subprocess.Popen[bytes], owner_password: str | None) -> None:
    url = local_url(settings.host, settings.port)
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
        else f"{local_url(settings.host, settings.metrics_port)}/metrics"
    )
    if owner_password is not None:
        sign_in = (
            f"             sign in as {DEMO_OWNER}\n"
            f"             with the password {owner_password} (shown this once)\n"
        )
    else:
        sign_in = (
            f"             sign in as {DEMO_OWNER} (its password was shown on the first\n"
            "             run; `kithost demo --new-password` sets a new one)\n"
        )
    print(
        "\nKithost is running (Ctrl-C stops it):\n"
        f"  Dashboard  {base}/admin/\n"
        f"{sign_in}"
        f"{demo}"
        f"  API        {base}/api/v1/docs\n"
        f"  Health     {base}/healthz  {base}/readyz  {metrics}\n"
        f"  Data       {settings.data_dir.resolve()}\n",
        flush=True,
    )


def stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each child, then wait for them all until :data:`STOP_TIMEOUT_SECONDS`
    (or another stop signal); a child still running then is killed with its whole group."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    try:
        for child in children.values():
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
    except (subprocess.TimeoutExpired, _Stop):
        pass
    for child in children.values():
        if child.returncode is None:
            # Its group is its session (start_new_session): it and every process it started.
            # The leader is not reaped yet, so the group's id is still its own.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
