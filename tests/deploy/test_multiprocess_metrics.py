"""``kithost serve --workers 2``: /metrics counts every worker process's requests, whichever
process answers the scrape (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port

REQUESTS = 60


def healthz_count(text: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "kithost_http_requests_total" and s.labels["route"] == "/healthz"
    )


def test_every_worker_is_counted(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "KITHOST_DATA_DIR": str(tmp_path), "KITHOST_LOG_LEVEL": "WARNING"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "kithost", "serve", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(command, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx2.get(f"{base}/api/v1/openapi.json", timeout=5)
                break
            except httpx2.TransportError:
                assert time.monotonic() < deadline, "kithost serve did not answer"
                time.sleep(0.2)
        # A connection each, 10 at a time: the kernel spreads them over the workers.
        with ThreadPoolExecutor(10) as pool:
            answers = list(
                pool.map(lambda _: httpx2.get(f"{base}/healthz", timeout=5), range(REQUESTS))
            )
        assert {a.status_code for a in answers} == {200}
        scrapes = [httpx2.get(f"{base}/metrics", timeout=5).text for _ in range(4)]
    finally:
        server.terminate()
        server.wait(timeout=60)
    # Both processes counted into the shared directory, and every scrape sums them.
    writers = {p.stem.rsplit("_", 1)[1] for p in (tmp_path / "metrics").glob("counter_*.db")}
    assert len(writers) == 2
    assert [healthz_count(text) for text in scrapes] == [REQUESTS] * 4
