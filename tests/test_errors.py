from __future__ import annotations

import logging

import httpx2
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from kithost.errors import Conflict, NotFound


class Thing(BaseModel):
    name: str = Field(min_length=1)
    size: int


@pytest.fixture
def routes(app: FastAPI) -> FastAPI:
    @app.get("/t/missing")
    async def missing() -> None:
        raise NotFound("No such thing.", code="thing_not_found")

    @app.post("/t/things")
    async def create(thing: Thing) -> Thing:
        if thing.name == "taken":
            raise Conflict("Taken.")
        return thing

    @app.get("/t/boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    return app


@pytest.mark.usefixtures("routes")
async def test_domain_errors_render_as_problem_json(client: httpx2.AsyncClient) -> None:
    response = await client.get("/t/missing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "code": "thing_not_found",
        "detail": "No such thing.",
        "instance": "/t/missing",
        "request_id": response.headers["x-request-id"],
    }
    conflict = await client.post("/t/things", json={"name": "taken", "size": 1})
    assert (conflict.status_code, conflict.json()["code"]) == (409, "conflict")


@pytest.mark.usefixtures("routes")
async def test_validation_errors_name_the_field(client: httpx2.AsyncClient) -> None:
    response = await client.post("/t/things", json={"name": "", "size": "big"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_failed"
    fields = {e["field"]: e["type"] for e in problem["errors"]}
    assert fields == {"name": "string_too_short", "size": "int_parsing"}


@pytest.mark.usefixtures("routes")
async def test_malformed_json_is_a_problem_not_a_500(client: httpx2.AsyncClient) -> None:
    response = await client.post(
        "/t/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


@pytest.mark.usefixtures("routes")
async def test_unknown_errors_are_logged_and_hidden(
    client: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.get("/t/boom", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "req-42"
    problem = response.json()
    assert problem["code"] == "internal_error"
    assert problem["request_id"] == "req-42"
    assert "hunter2" not in response.text
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("unhandled_exception" in m and "req-42" in m and "hunter2" in m for m in logged)


async def test_routing_errors_are_problems(client: httpx2.AsyncClient) -> None:
    not_found = await client.get("/nowhere")
    assert (not_found.status_code, not_found.json()["code"]) == (404, "not_found")
    not_allowed = await client.post("/healthz")
    assert (not_allowed.status_code, not_allowed.json()["code"]) == (405, "method_not_allowed")
    # Every method of the path, though each has a route of its own.
    key = await client.post("/api/v1/tenants/acme/openai-key")
    assert (key.status_code, key.headers["allow"]) == (405, "DELETE, GET, PUT")


async def test_request_ids_are_generated_unless_a_sane_one_is_given(
    client: httpx2.AsyncClient,
) -> None:
    generated = (await client.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32
    assert (await client.get("/healthz")).headers["x-request-id"] != generated
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    hostile = await client.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 100})
    assert hostile.headers["x-request-id"] != "a b\tc" + "x" * 100
