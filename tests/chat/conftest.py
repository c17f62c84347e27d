"""The chat tests talk to a real uvicorn server on loopback (streaming and disconnects are
real), which serves each test's app (its sessions in the test's transaction); the model is
the fake OpenAI server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from tests.chat.helpers import SentTasks


class LoopbackServer:
    """uvicorn in the test session's event loop, serving whichever app ``app`` is."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(
            self._dispatch, lifespan="off", log_config=None, log_level="warning", interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no app is being served"
        await self.app(scope, receive, send)

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self._socket]))
        # uvicorn offers only this flag to wait for.
        while not self.server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


@pytest.fixture(scope="session")
async def loopback() -> AsyncIterator[LoopbackServer]:
    server = LoopbackServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(app: FastAPI, loopback: LoopbackServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the test's app, over real sockets."""
    loopback.app = app
    async with httpx.AsyncClient(base_url=loopback.url, timeout=30) as client:
        yield client
    loopback.app = None


@pytest.fixture(autouse=True)
def sent_tasks(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    """The Celery tasks the app sends (after commits), recorded instead of sent (no worker
    consumes the analytics facts in these tests)."""
    sent = SentTasks(app.state.facts)
    monkeypatch.setattr(app.state.celery, "send_task", sent.record)
    return sent
