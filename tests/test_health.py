from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from kithost import migrate
from kithost.app import create_app
from kithost.settings import Settings
from tests.conftest import create_pg_database, database_at, drop_pg_database


async def test_healthz_answers_without_dependencies(client: httpx2.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_database_and_broker(client: httpx2.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_uptime_checks_may_ask_with_head(client: httpx2.AsyncClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = await client.head(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "application/json"


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


def previous_revision() -> str:
    """The revision before this release's newest: a database one migration behind."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    [head] = script.get_heads()
    down = script.get_revision(head).down_revision
    assert isinstance(down, str)
    return down


def dialect(settings: Settings) -> str:
    return "postgresql" if settings.database.startswith("postgresql") else "sqlite"


def test_readyz_is_503_until_the_schema_is_this_releases(
    settings: Settings, tmp_path: Path
) -> None:
    """A database one migration behind (an upgrade that skipped its migrations Job), then
    migrated: not ready, then ready, in the same process. (Synchronous: migrations run an
    event loop of their own.)"""
    with database_at(previous_revision(), dialect(settings), tmp_path) as behind:
        app = create_app(settings.model_copy(update={"database_url": behind.database_url}))
        response = asyncio.run(_readyz(app))
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "schema_mismatch"
        migrate.upgrade(behind)
        assert asyncio.run(_readyz(app)).status_code == 200


async def test_readyz_is_503_on_a_database_never_migrated(
    settings: Settings, tmp_path: Path
) -> None:
    postgresql = dialect(settings) == "postgresql"
    url = create_pg_database() if postgresql else f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    try:
        app = create_app(settings.model_copy(update={"database_url": url}))
        response = await _readyz(app)
    finally:
        if postgresql:
            drop_pg_database(url)
    assert response.status_code == 503
    assert response.json()["code"] == "schema_mismatch"
    assert response.json()["detail"] == (
        "The database's schema is not this release's: run `kithost migrate`."
    )


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
