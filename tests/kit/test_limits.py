"""Limits every request meets: header and body sizes (431, 413 as problems, also for a body
without ``Content-Length``), bodies that arrive too slowly (408), and clients that leave
mid-body (no error logged, the server goes on). Over a real uvicorn on loopback where the
socket matters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from kithost.kit.limits import UPLOAD_OVERHEAD, body_limit
from kithost.settings import Settings
from tests.conftest import LoopbackServer, create_test_app

TOKEN = "/oauth/token"
MiB = 1024 * 1024


def assert_problem(response: httpx2.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_headers_over_the_limit_are_431(client: httpx2.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Big": "x" * (33 * 1024)})
    assert_problem(response, 431, "headers_too_large")
    assert (await client.get("/healthz", headers={"X-Big": "x" * 1024})).status_code == 200


async def test_bodies_over_the_limit_are_413_with_or_without_a_length(
    client: httpx2.AsyncClient,
) -> None:
    big = b"x" * (MiB + 1)
    assert_problem(await client.post(TOKEN, content=big), 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b"y" * (64 * 1024)

    login = "/api/v1/auth/login"
    headers = {"Content-Type": "application/json"}
    assert_problem(
        await client.post(login, content=chunks(), headers=headers), 413, "payload_too_large"
    )


def test_routes_that_take_uploads_have_their_own_limits(settings: Settings) -> None:
    limits = settings.limits
    assert body_limit(limits, "/api/v1/auth/login") == settings.max_body_bytes
    assert body_limit(limits, "/v1/chatkit/pk_1") is None, "the chat routes limit their own"
    assert body_limit(limits, "/v1/chatkit/pk_1/attachments/att_1/upload") is None
    documents = "/api/v1/tenants/acme/knowledge-bases/kb/documents"
    assert body_limit(limits, documents) == settings.knowledge_document_max_bytes + UPLOAD_OVERHEAD


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection) -> FastAPI:
    return create_test_app(settings, connection, body_timeout_seconds=0.5)


async def half_sent(
    loopback: LoopbackServer, body: bytes, length: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A POST to the token endpoint declaring ``length`` bytes and sending ``body``."""
    url = urlsplit(loopback.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = (
        f"POST {TOKEN} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    return reader, writer


async def test_a_body_that_stops_arriving_is_408(
    http: httpx2.AsyncClient, loopback: LoopbackServer
) -> None:
    reader, writer = await half_sent(loopback, b"grant_type=", 100)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b"application/problem+json" in head
    assert b'"code":"request_timeout"' in body


async def test_clients_leaving_mid_body_are_not_errors(
    http: httpx2.AsyncClient, loopback: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    writers = [(await half_sent(loopback, b"grant_type=client", 100))[1] for _ in range(20)]
    for writer in writers:
        writer.close()
    await asyncio.sleep(0.2)
    assert (await http.get("/healthz")).status_code == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
