"""/metrics: the platform's own counters, with labels from small fixed sets (never a tenant's
or widget's id), and the broker queue's depth."""

from __future__ import annotations

import secrets

import httpx2
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.settings import Settings
from tests.analytics.helpers import SHOP, event, published_widget
from tests.conftest import REDIS_URL, create_test_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx2.AsyncClient) -> tuple[str, Samples]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_mints_config_cache_events_and_queue_depth(
    settings: Settings, connection: AsyncConnection, db: AsyncSession, task_queue: str
) -> None:
    queue = f"{task_queue}-metrics-{secrets.token_hex(3)}"  # its depth is this test's
    app = create_test_app(settings, connection, task_queue=queue)
    transport = httpx2.ASGITransport(app=app)
    try:
        async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
            await check_platform_metrics(client, db, queue)
    finally:
        redis.Redis.from_url(REDIS_URL).delete(queue)


async def check_platform_metrics(client: httpx2.AsyncClient, db: AsyncSession, queue: str) -> None:
    widget = await published_widget(db)
    _, before = await scrape(client)
    session_url = f"/v1/embed/{widget.public_key}/session"
    headers = {"Origin": SHOP}
    minted = await client.post(session_url, json={"device_id": "anon_" + "m" * 24}, headers=headers)
    assert minted.status_code == 200, minted.text
    refused = await client.post(session_url, json={"current": "forged"}, headers=headers)
    assert refused.json()["code"] == "invalid_session_token"
    batch = {"end_user": None, "events": [event("loader.loaded"), event("made.up")]}
    sent = await client.post(f"/v1/embed/{widget.public_key}/events", json=batch, headers=headers)
    assert sent.json()["accepted"] == 1

    text, after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    mints = "kithost_session_mints_total"
    assert delta(mints, mode="self_hosted", result="ok") == 1
    assert delta(mints, mode="self_hosted", result="invalid_session_token") == 1
    cache = "kithost_config_cache_total"
    assert delta(cache, result="loaded") == 1
    assert delta(cache, result="hit") == 2
    assert delta("kithost_events_total", result="accepted") == 1
    assert delta("kithost_events_total", result="dropped") == 1
    assert value(after, "kithost_broker_queue_depth", queue=queue) == 1
    for secret in (widget.public_key, str(widget.id), str(widget.tenant_id)):
        assert secret not in text


async def test_queue_depth_is_absent_when_the_broker_is_down(
    settings: Settings, connection: AsyncConnection
) -> None:
    app = create_test_app(settings, connection, broker_url="redis://127.0.0.1:1/0")
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        text, _ = await scrape(client)
    assert "kithost_broker_queue_depth" not in text
    assert "kithost_http_requests_total" in text
