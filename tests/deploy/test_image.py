"""The container image, without Docker (none runs here): the Dockerfile passes hadolint and
the rules below, and the virtualenv built the image's way (docker/install.sh, no dev tools)
runs every command the image and the chart call."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.conftest import REDIS_URL, free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
TIMEOUT = 60


def stages() -> list[str]:
    """The Dockerfile's build stages, each from its FROM line on."""
    text = DOCKERFILE.read_text()
    return ["FROM" + part for part in re.split(r"^FROM", text, flags=re.MULTILINE)[1:]]


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_rules() -> None:
    *builders, final = stages()
    frontends = next(s for s in builders if s.startswith("FROM node:"))
    assert "npm ci" in frontends
    assert "/app/embed" in frontends
    assert "/app/admin-ui" in frontends
    python = next(s for s in builders if "docker/install.sh" in s)
    assert "requirements.lock" in python
    assert final.startswith("FROM python:3.11-slim")
    for forbidden in ("npm", "node", "gcc", "build-essential", "apt-get install", "HEALTHCHECK"):
        assert forbidden not in final.replace("--from=frontends", ""), forbidden
    [user] = re.findall(r"^USER (\S+)", final, flags=re.MULTILINE)
    assert not user.startswith(("root", "0"))
    assert 'ENTRYPOINT ["kithost"]' in final
    assert "HEALTHCHECK" not in DOCKERFILE.read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".env", ".venv", "**/node_modules", "**/.git", ".kithost", "tests"):
        assert path in ignored, path


def test_the_image_installs_nothing_the_lock_does_not_hash(tmp_path: Path) -> None:
    """``docker/install.sh`` checks each package against ``requirements.lock``'s hashes."""
    (tmp_path / "requirements.lock").write_text(f"six==1.17.0 --hash=sha256:{'0' * 64}\n")
    result = subprocess.run(
        ["sh", str(ROOT / "docker" / "install.sh"), str(tmp_path), str(tmp_path / "venv")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr
    assert not (tmp_path / "venv" / "bin" / "kithost").exists()


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run(
        ["sh", str(ROOT / "docker" / "install.sh"), str(ROOT), str(venv)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return venv / "bin"


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    """Settings the way the chart gives them (production, from the environment)."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "KITHOST_ENV": "production",
        "KITHOST_SECRET_KEY": "image-test-secret",
        "KITHOST_DATA_DIR": str(tmp_path / "data"),
        "KITHOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'kithost.db'}",
        "KITHOST_BROKER_URL": REDIS_URL,
        "KITHOST_PUBLIC_URL": "https://kithost.example.com",
        "KITHOST_TASK_QUEUE": f"image-{secrets.token_hex(4)}",
        "KITHOST_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_entry_commands_start_from_the_image_virtualenv(
    image_venv: Path, environment: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    assert not (image_venv / "pytest").exists()  # no dev tools
    kithost = str(image_venv / "kithost")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kithost, *args], env=environment, capture_output=True, text=True, timeout=TIMEOUT
        )

    migrated = run("migrate")
    assert migrated.returncode == 0, migrated.stderr

    port = free_port()
    for args in (["serve", "--port", str(port)], ["worker", "--concurrency", "1"], ["beat"]):
        processes.append(subprocess.Popen([kithost, *args], env=environment))
    serve, _worker, _beat = processes

    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            ready = httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            break
        except httpx2.TransportError:
            assert time.monotonic() < deadline, "kithost serve did not answer"
            time.sleep(0.2)
    assert ready.status_code == 200, ready.text
    loader = httpx2.get(f"http://127.0.0.1:{port}/embed.js", timeout=5)
    assert loader.status_code == 200  # the built front end is in place

    pinged = run("ping-worker", "--timeout", "20")
    assert pinged.returncode == 0, pinged.stderr
    data_dir = Path(environment["KITHOST_DATA_DIR"])
    while not list(data_dir.glob("celerybeat-schedule*")):  # what beat's probes look at
        assert time.monotonic() < deadline, "kithost beat wrote no schedule"
        time.sleep(0.2)
    for process in processes:
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
    # uvicorn stops gracefully, then re-raises the signal for process managers to see.
    assert serve.wait(timeout=TIMEOUT) == -signal.SIGTERM
    for process in processes:
        process.wait(timeout=TIMEOUT)
