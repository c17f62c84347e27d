from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx2
import pytest
import structlog
from fastapi import FastAPI

from kithost.log import configure_logging


@pytest.fixture
def json_log(app: FastAPI) -> Iterator[io.StringIO]:
    """JSON logging into a buffer, configured after the app (which configures logging)."""
    buffer = io.StringIO()
    configure_logging(level="INFO", json=True, stream=buffer)
    yield buffer
    configure_logging(level="INFO", json=False)


async def test_production_logs_are_json_lines_with_the_request_id(
    app: FastAPI, client: httpx2.AsyncClient, json_log: io.StringIO
) -> None:
    @app.get("/t/log")
    async def log_something() -> None:
        structlog.get_logger("kithost.test").info("something_happened", widget="pk_1")

    response = await client.get("/t/log", headers={"X-Request-ID": "req-json-1"})
    assert response.status_code == 200
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    event = next(line for line in lines if line["event"] == "something_happened")
    assert event["request_id"] == "req-json-1"
    assert event["level"] == "info"
    assert event["widget"] == "pk_1"
    assert event["logger"] == "kithost.test"


async def test_development_logs_render_a_500s_traceback_plainly(
    app: FastAPI, client: httpx2.AsyncClient
) -> None:
    """A plain traceback: rich's syntax-highlighted ones took ~0.7 s of the event loop per
    500, so a few bad requests a second stalled every tenant's requests."""
    buffer = io.StringIO()
    configure_logging(level="INFO", json=False, stream=buffer)

    @app.get("/t/crash")
    async def crash() -> None:
        raise RuntimeError("boom in a route")

    try:
        response = await client.get("/t/crash")
    finally:
        configure_logging(level="INFO", json=False)
    assert response.status_code == 500
    logged = buffer.getvalue()
    assert "Traceback (most recent call last):" in logged
    assert "RuntimeError: boom in a route" in logged
    assert not {"╭", "│"} & set(logged), "rich's boxes"
