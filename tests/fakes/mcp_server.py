"""A tenant's MCP server on loopback: the ``mcp`` package's own server (``MCPServer``, once
FastMCP) over Streamable HTTP, served by uvicorn in the test's event loop, with these tools:

- ``add(a, b)``: the sum, as text;
- ``order_status(order)``: needs ``Authorization: <secret>`` on the request, else
  the call fails (an MCP tool error);
- ``slow(seconds)`` answers after ``seconds``; ``big(size)`` with ``size`` characters;
- ``delete_everything()``: never to be offered to a model (tests leave it out of
  ``allowed_tools``);
- ``garbled()``: its description holds a NUL character, which Kithost can neither store
  nor show;
- ``cancel\u202eorder()``: its name holds a bidi override, which the dashboard never shows.

Servers given one ``gate`` (a barrier) answer their first requests only once all have come.

Every HTTP request's headers are recorded (``requests``), to prove which credentials came.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType
from typing import Self

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

SECRET = "Bearer mcp-secret-0123456789"


class FakeMcp:
    """Serve on a free loopback port (``url``: ``http://127.0.0.1:PORT/mcp``)."""

    def __init__(self, secret: str = SECRET, gate: asyncio.Barrier | None = None) -> None:
        self.secret = secret
        self.gate = gate
        """Its first request waits (30 s at most: longer than a client waits to connect)
        until every server sharing the barrier has had its first one."""
        self.requests: list[dict[str, str]] = []
        """The headers of every HTTP request so far, lower-cased names."""
        self.methods: list[str] = []
        """The method of every HTTP request so far."""
        self.deleted = False
        server = MCPServer("orders")

        @server.tool(description="Add two numbers.")
        def add(a: int, b: int) -> str:
            return str(a + b)

        @server.tool(description="The status of an order (needs the secret).")
        def order_status(order: str, ctx: Context) -> str:
            request = ctx.request_context.request
            sent = getattr(request, "headers", {}).get("authorization")
            if sent != self.secret:
                raise ValueError("unauthorized: no valid Authorization header")
            return f"Order {order} has shipped."

        @server.tool(description="Answer after a while.")
        async def slow(seconds: float) -> str:
            await anyio.sleep(seconds)
            return "finally"

        @server.tool(description="A long text.")
        def big(size: int) -> str:
            return "x" * size

        @server.tool(description="Delete every order.")
        def delete_everything() -> str:
            self.deleted = True
            return "done"

        @server.tool(description="Broken\x00 text.")
        def garbled() -> str:
            return "garbled"

        @server.tool(name="cancel\u202eorder", description="Reads as another name.")
        def reversed_name() -> str:
            return "cancelled"

        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        self._app = server.streamable_http_app(transport_security=security)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def _recording(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.methods.append(scope["method"])
            self.requests.append(
                {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
            )
            gate, self.gate = self.gate, None
            if gate is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gate.wait(), 30)
        await self._app(scope, receive, send)

    async def __aenter__(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._recording, log_config=None, log_level="warning", interface="asgi3"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:  # noqa: ASYNC110 (uvicorn offers only this flag)
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        """Stop serving (a server gone away); the port stays closed."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
