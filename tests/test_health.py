from __future__ import annotations

import httpx2
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from kithost.app import create_app
from kithost.settings import Settings


async def test_healthz_answers_without_dependencies(client: httpx2.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_database_and_broker(client: httpx2.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def _readyz(app: FastAPI) -> httpx2.Response:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get("/readyz")


async def test_readyz_is_503_when_the_broker_is_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    response = await _readyz(create_app(broken))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "not_ready"
    assert problem["detail"] == "Unreachable: broker."


async def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
    response = await _readyz(create_app(settings.model_copy(update={"database_url": url})))
    assert response.status_code == 503
    assert response.json()["detail"] == "Unreachable: database."


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_metrics_count_requests_by_route_template(client: httpx2.AsyncClient) -> None:
    before = _samples((await client.get("/metrics")).text, "kithost_http_requests_total")
    await client.get("/healthz")
    await client.get("/no/such/page/123")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    after = _samples(response.text, "kithost_http_requests_total")

    def grew(route: str, status: str) -> float:
        key = (("method", "GET"), ("route", route), ("status", status))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("/healthz", "200") == 1
    assert grew("<unmatched>", "404") == 1
    assert not any(dict(k).get("route") == "/no/such/page/123" for k in after)
    latency = _samples(response.text, "kithost_http_request_duration_seconds_count")
    assert latency[(("method", "GET"), ("route", "/healthz"))] >= 1
