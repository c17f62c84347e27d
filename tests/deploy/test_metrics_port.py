"""``kithost serve`` with ``KITHOST_METRICS_PORT`` (as the chart runs it): Prometheus scrapes
that port, and the public port, the one a proxy or Ingress forwards, has no ``/metrics``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from kithost.app import create_app
from kithost.settings import Settings
from tests.conftest import free_port


def healthz_count(text: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "kithost_http_requests_total" and s.labels["route"] == "/healthz"
    )


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 180  # a loaded machine starts two processes slowly
    while True:
        try:
            httpx2.get(url, timeout=5)
            return
        except httpx2.TransportError:
            assert time.monotonic() < deadline, f"nothing answered at {url}"
            time.sleep(0.2)


def test_metrics_are_served_on_their_own_port_only(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "KITHOST_DATA_DIR": str(tmp_path),
        "KITHOST_LOG_LEVEL": "WARNING",
        "KITHOST_ALLOWED_HOSTS": "kithost.example.com",
        "KITHOST_METRICS_PORT": str(metrics_port),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "kithost", "serve", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(command, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/healthz")
        public = {"Host": "kithost.example.com"}
        for _ in range(3):
            assert httpx2.get(f"{base}/healthz", timeout=5).status_code == 200
        hidden = httpx2.get(f"{base}/metrics", headers=public, timeout=5)
        foreign = httpx2.get(f"{base}/metrics", headers={"Host": "evil.example"}, timeout=5)
        scrape = httpx2.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    assert "kithost_" not in hidden.text
    assert foreign.status_code == 400
    assert foreign.json()["code"] == "invalid_host"
    assert scrape.status_code == 200
    assert healthz_count(scrape.text) >= 3  # every process's, summed
    assert "kithost_broker_queue_depth" in scrape.text


async def test_without_a_metrics_port_the_host_check_covers_metrics(tmp_path: Path) -> None:
    """``/metrics`` on the app's port is not exempt from ``KITHOST_ALLOWED_HOSTS`` (only the
    kubelet's probes are): a proxy forwarding any host name does not reach it."""
    settings = Settings(data_dir=tmp_path, secret_key="k", allowed_hosts="kithost.example.com")
    transport = httpx2.ASGITransport(app=create_app(settings))
    async with httpx2.AsyncClient(transport=transport, base_url="http://10.1.2.3") as client:
        foreign = await client.get("/metrics")
        probe = await client.get("/healthz")
        named = await client.get("/metrics", headers={"Host": "kithost.example.com"})
    assert foreign.status_code == 400
    assert probe.status_code == 200
    assert named.status_code == 200
