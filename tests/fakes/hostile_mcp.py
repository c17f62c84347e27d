"""An MCP server on loopback that misbehaves as a test tells it to: a bare HTTP/1.1 server
(JSON answers, no SSE) on the test's event loop speaking just enough of MCP's Streamable
HTTP for the ``mcp`` client: ``initialize``, ``tools/list``, ``tools/call`` and the
session's closing ``DELETE``.

- ``tools``: what ``tools/list`` answers (``{"name", "description", "inputSchema"}``), a
  name twice if the test likes; ``tools/call`` answers ``called NAME``;
- ``gzip``: every answer compressed (``Content-Encoding: gzip``);
- ``protocol_version``: the version ``initialize`` answers (the client's unless set);
- ``list_status``: ``tools/list`` answered with this HTTP status and no body;
- ``drip_close``: the ``DELETE`` closing the session answered 200, then a byte every 0.1 s
  without end;
- ``hold_start``: ``initialize`` waits until ``release`` is set (``started`` is set once it
  waits).

``methods`` records every request's HTTP method and JSON-RPC method (``DELETE``: ``-``)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip as gzip_module
import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

SESSION = "hostile-session"


def tool(name: str, description: str = "A tool.") -> dict[str, Any]:
    return {"name": name, "description": description, "inputSchema": {"type": "object"}}


@dataclass
class HostileMcp:
    tools: list[dict[str, Any]] = field(default_factory=lambda: [tool("add")])
    gzip: bool = False
    protocol_version: str | None = None
    list_status: int | None = None
    drip_close: bool = False
    hold_start: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    methods: list[tuple[str, str]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/mcp"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self.release.set()  # a held or dripping answer ends
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while await self._request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; whether the connection goes on."""
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method = head[0].split(" ")[0]
        headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
        length = int(headers.get("content-length", "0"))
        body = json.loads(await reader.readexactly(length)) if length else {}
        self.methods.append((method, body.get("method", "-")))
        if method == "DELETE":
            if not self.drip_close:
                await self._answer(writer, 200, b"")
                return True
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            while not self.release.is_set():
                writer.write(b"1\r\nx\r\n")
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.release.wait(), 0.1)
            return False
        if method != "POST":
            await self._answer(writer, 405, b"")
            return True
        if "id" not in body:  # a notification
            await self._answer(writer, 202, b"")
            return True
        rpc = body["method"]
        if rpc == "initialize":
            if self.hold_start:
                self.started.set()
                await self.release.wait()
            result: dict[str, Any] = {
                "protocolVersion": self.protocol_version or body["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "hostile", "version": "1"},
            }
        elif rpc == "tools/list":
            if self.list_status is not None:
                await self._answer(writer, self.list_status, b"")
                return True
            result = {"tools": self.tools}
        elif rpc == "tools/call":
            text = f"called {body['params']['name']}"
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        else:
            result = {}
        answer = {"jsonrpc": "2.0", "id": body["id"], "result": result}
        await self._answer(writer, 200, json.dumps(answer).encode(), json=True)
        return True

    async def _answer(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, *, json: bool = False
    ) -> None:
        headers = [f"HTTP/1.1 {status} X", f"mcp-session-id: {SESSION}"]
        if json:
            headers.append("content-type: application/json")
        if self.gzip and body:
            body = gzip_module.compress(body)
            headers.append("content-encoding: gzip")
        headers.append(f"content-length: {len(body)}")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
        await writer.drain()
