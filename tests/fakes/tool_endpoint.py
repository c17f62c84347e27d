"""A tenant's ``http`` tool endpoint on loopback, checking Kithost's signature as a tenant
would (``chat.http_tool``): a bare HTTP/1.1 server on the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool
    """Whether ``Kithost-Signature`` matched the secret, timestamp and body."""

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ToolEndpoint:
    secret: str
    status: int = 200
    answer: bytes = b'{"status": "shipped"}'
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/tools/order"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._closing.set()  # a delayed answer stops waiting
        self._server.close()
        await self._server.wait_closed()

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        timestamp = headers.get("kithost-timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        mac = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest(
            headers.get("kithost-signature", ""), "sha256=" + mac.hexdigest()
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers = {}
            while (line := (await reader.readline()).decode().strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(method, path, headers, body, self.verify(headers, body)))
            if self.delay_seconds:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.delay_seconds)
            writer.write(
                f"HTTP/1.1 {self.status} X\r\ncontent-type: application/json\r\n"
                f"content-length: {len(self.answer)}\r\nconnection: close\r\n\r\n".encode()
                + self.answer
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
