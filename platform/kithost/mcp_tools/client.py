"""A widget's ``mcp`` tools: remote MCP servers (Streamable HTTP) Kithost connects to itself,
through the Agents SDK's ``MCPServerStreamableHttp``, so they work with any model API.

- Every HTTP request goes through ``kit.outbound`` (``httpx_client_factory``): public
  addresses only, unless ``KITHOST_OUTBOUND_ALLOW`` opens others, checked on every connection;
  HTTPS outside those; no redirects; the tool's ``timeout_seconds``; at most
  :data:`MAX_RESPONSE_BYTES` per response (decoded: as the MCP client holds it), a lone
  surrogate in it as U+FFFD (the model reads the text; the MCP client would refuse the
  whole answer). Connecting takes at most twice the timeout and :data:`CLOSE_SECONDS`,
  closing at most :data:`CLOSE_SECONDS`, however slowly the server answers.
- Only ``allowed_tools`` are offered to the model (the SDK's static ``tool_filter``); a
  server's other tools never reach it.
- The tool's secret (``mcp_tools.service``, encrypted, write-only) goes in its ``secret_header``,
  and only to the origin it was set for: a URL changed since is refused until the secret is
  set again.
- An answer connects to its servers once, before the model runs, side by side, each in a
  task of its own (:class:`McpConnections`), and closes them when the response ends. A
  server that cannot be reached, is refused, or fails leaves its allowed tools in place
  answering ``{"error": …}``, as a failing call does: the model explains, the answer goes on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from agents import AgentsException, FunctionTool, RunContextWrapper, Tool
from agents.mcp import MCPServerStreamableHttp, MCPUtil, create_static_tool_filter
from agents.tool_context import ToolContext
from chatkit.agents import AgentContext
from chatkit.types import ProgressUpdateEvent
from mcp.types import Tool as McpToolInfo

from kithost.kit.outbound import (
    CheckedTransport,
    OutboundPolicy,
    OutboundRefused,
    Resolver,
    no_cookies,
    origin_of,
)
from kithost.kit.surrogates import JsonMender
from kithost.widgets.config import McpTool

MAX_RESPONSE_BYTES = 1_048_576
"""The most one HTTP response of an MCP server may carry."""
CLOSE_SECONDS = 5
"""How long closing an answer's servers may take."""
TASK_NAME = "mcp-connection"
"""The name of the tasks holding an answer's servers open."""


@dataclass(frozen=True)
class McpSecret:
    """A tool's secret, decrypted, and the origin it was set for."""

    value: str = field(repr=False)
    origin: str


class McpUnavailable(Exception):
    """Why an MCP server cannot be used now; ``kind``: ``refused`` (an address Kithost may
    not connect to), ``secret`` (the secret was set for another address), ``timeout`` or
    ``failed``."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _causes(error: BaseException) -> list[BaseException]:
    """``error``, what it wraps and what its groups hold (the MCP client raises task groups)."""
    found: list[BaseException] = []
    pending = [error]
    while pending:
        seen = pending.pop()
        if seen in found:
            continue
        found.append(seen)
        if isinstance(seen, BaseExceptionGroup):
            pending.extend(seen.exceptions)
        pending.extend(e for e in (seen.__cause__, seen.__context__) if e is not None)
    return found


@dataclass
class _Cap:
    """The response size limit of one server's clients, and whether a response passed it
    (the MCP client reports only a closed connection)."""

    limit: int
    exceeded: bool = False


def unavailable(error: BaseException, tool: McpTool, cap: _Cap) -> McpUnavailable:
    """The :class:`McpUnavailable` that ``error`` (from the SDK or the transport) means."""
    if cap.exceeded:
        return McpUnavailable(
            "failed", f"The MCP server's answer is larger than {cap.limit} bytes."
        )
    causes = _causes(error)
    refused = next((c for c in causes if isinstance(c, OutboundRefused)), None)
    if refused is not None:
        return McpUnavailable(
            "refused", f"Kithost may not connect to this address: {refused.host}: {refused.reason}"
        )
    for cause in causes:
        if isinstance(cause, httpx2.TimeoutException | TimeoutError):
            return McpUnavailable(
                "timeout", f"The MCP server did not answer within {tool.timeout_seconds:g} s."
            )
        if isinstance(cause, httpx2.HTTPStatusError):
            status = cause.response.status_code
            return McpUnavailable("failed", f"The MCP server answered with HTTP status {status}.")
        if isinstance(cause, httpx2.TransportError):
            return McpUnavailable(
                "failed", f"The MCP server could not be reached ({type(cause).__name__})."
            )
    if isinstance(error, AgentsException):  # the SDK's wording, without the URL or headers
        kind = "timeout" if "timeout" in str(error).lower() else "failed"
        return McpUnavailable(kind, str(error))
    return McpUnavailable("failed", f"The MCP server failed ({type(error).__name__}).")


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, cap: _Cap) -> None:
        self._inner, self._cap = inner, cap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        mender = JsonMender()
        async for chunk in self._inner:
            received += len(chunk)
            if received > self._cap.limit:
                self._cap.exceeded = True
                raise httpx2.ReadError(f"an answer larger than {self._cap.limit} bytes")
            yield mender.feed(chunk)
        yield mender.end()

    async def aclose(self) -> None:
        await self._inner.aclose()


class _DecodedStream(httpx2.AsyncByteStream):
    """A response's body decoded (``Content-Encoding``), in bounded pieces (httpx2's
    decoders)."""

    def __init__(self, encoded: httpx2.Response) -> None:
        self._encoded = encoded

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._encoded.aiter_bytes():
            yield chunk

    async def aclose(self) -> None:
        await self._encoded.aclose()


class _CappedTransport(httpx2.AsyncBaseTransport):
    """Responses within ``cap`` (beyond it, a read error), each lone surrogate's escape in
    them (``"\\ud800"``, which the MCP client's parser refuses: the call would fail) as
    U+FFFD's (``kit.surrogates``). A compressed response is decoded here, so the cap counts
    what the MCP client holds, not what the server sent (300 KB of gzip made 2 GB)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, cap: _Cap) -> None:
        self._inner, self._cap = inner, cap

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        stream: httpx2.AsyncByteStream = response.stream
        if "content-encoding" in response.headers:
            encoded = httpx2.Response(
                response.status_code, headers=response.headers, stream=stream, request=request
            )
            stream = _DecodedStream(encoded)
            del response.headers["content-encoding"]
            response.headers.pop("content-length", None)
        response.stream = _CappedStream(stream, self._cap)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(frozen=True)
class McpConnector:
    """Connects to ``mcp`` tools' servers within the deployment's outbound ``policy``."""

    policy: OutboundPolicy
    resolver: Resolver

    def client_factory(self, tool: McpTool, cap: _Cap) -> Callable[..., httpx2.AsyncClient]:
        """The SDK's ``httpx_client_factory``: a ``kit.outbound`` client for ``tool``."""

        def create(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            transport = CheckedTransport(self.policy, resolver=self.resolver)
            return httpx2.AsyncClient(
                transport=_CappedTransport(transport, cap),
                headers=headers,
                timeout=timeout or tool.timeout_seconds,
                auth=auth,
                follow_redirects=False,
                cookies=no_cookies(),
                trust_env=False,
            )

        return create

    def server(
        self, tool: McpTool, secret: McpSecret | None, cap: _Cap, *, allowed_only: bool
    ) -> MCPServerStreamableHttp:
        url = str(tool.url)
        refused = self.policy.https_refusal(url)
        if refused is not None:
            raise McpUnavailable("refused", f"Kithost may not connect to this address: {refused}")
        headers = {}
        if secret is not None:
            if secret.origin != origin_of(url):
                raise McpUnavailable(
                    "secret",
                    "The tool's address changed since its secret was set: set the secret again.",
                )
            headers[tool.secret_header] = secret.value
        return MCPServerStreamableHttp(
            {
                "url": url,
                "headers": headers,
                "timeout": tool.timeout_seconds,
                "sse_read_timeout": tool.timeout_seconds,
                "httpx_client_factory": self.client_factory(tool, cap),
            },
            name=tool.id,
            client_session_timeout_seconds=tool.timeout_seconds,
            tool_filter=(
                create_static_tool_filter(allowed_tool_names=tool.allowed_tools)
                if allowed_only
                else None
            ),
            failure_error_function=_tool_error(tool, cap),
        )

    @asynccontextmanager
    async def connected(
        self, tool: McpTool, secret: McpSecret | None, *, allowed_only: bool = True
    ) -> AsyncIterator[tuple[MCPServerStreamableHttp, list[McpToolInfo]]]:
        """``tool``'s server, connected, and its tools (the allowed ones, or all);
        :class:`McpUnavailable` when it cannot be used."""
        cap = _Cap(MAX_RESPONSE_BYTES)
        server = self.server(tool, secret, cap, allowed_only=allowed_only)
        try:
            # Each request has the tool's timeout, but not what the SDK does around them:
            # closing the session after a failed start, a DELETE a server may answer a byte
            # at a time (the SDK cleans up a failed start itself).
            with anyio.fail_after(2 * tool.timeout_seconds + CLOSE_SECONDS):
                await server.connect()  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise unavailable(exc, tool, cap) from exc
        try:
            try:
                listed = list(await server.list_tools())
            except Exception as exc:
                raise unavailable(exc, tool, cap) from exc
            yield server, listed
        finally:
            # The same DELETE: a server answering it slowly held the caller (a discovery
            # request, an answer whose server failed) for as long as it liked.
            with anyio.move_on_after(CLOSE_SECONDS):
                await server.cleanup()  # type: ignore[no-untyped-call]

    async def discover(self, tool: McpTool, secret: McpSecret | None) -> list[McpToolInfo]:
        """Every tool ``tool``'s server has, allowed or not."""
        async with self.connected(tool, secret, allowed_only=False) as (_, listed):
            return listed


def _tool_error(tool: McpTool, cap: _Cap) -> Callable[[RunContextWrapper[Any], Exception], str]:
    def error(context: RunContextWrapper[Any], exc: Exception) -> str:
        return json.dumps({"error": unavailable(exc, tool, cap).reason})

    return error


def _labelled(function: FunctionTool, label: str) -> FunctionTool:
    """``function`` showing the visitor ``label`` when it runs."""
    invoke = function.on_invoke_tool

    async def labelled(run: ToolContext[AgentContext[Any]], raw: str) -> Any:
        await run.context.stream(ProgressUpdateEvent(icon="bolt", text=label))
        return await invoke(run, raw)

    function.on_invoke_tool = labelled
    return function


def _unavailable_tools(tool: McpTool, reason: str) -> list[Tool]:
    """``tool``'s allowed tools answering why its server cannot be used."""
    answer = json.dumps({"error": f"This tool is unavailable right now. {reason}"})

    async def invoke(run: ToolContext[AgentContext[Any]], raw: str) -> str:
        return answer

    return [
        FunctionTool(
            name=name,
            description=f"{tool.label} (unavailable right now)",
            params_json_schema={"type": "object", "properties": {}},
            on_invoke_tool=invoke,
            strict_json_schema=False,
        )
        for name in tool.allowed_tools
    ]


class McpConnections:
    """One answer's MCP servers, connected side by side (the answer waits for the slowest,
    not for them all in turn), each held open by a task of its own: the MCP client's task
    groups must be entered and left in one task, and the response's generators yield
    between."""

    def __init__(
        self,
        connector: McpConnector,
        tools: Sequence[McpTool],
        secrets: Callable[[], Awaitable[dict[str, McpSecret]]],
    ) -> None:
        self._connector, self._tools, self._secrets = connector, tools, secrets
        self._done = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> list[Tool]:
        """The agent's tools of every server (connected ones, or answering errors). Call
        :meth:`close` after, even when this fails or is cancelled."""
        secrets = await self._secrets()
        loop = asyncio.get_running_loop()
        ready: list[asyncio.Future[list[Tool]]] = [loop.create_future() for _ in self._tools]
        self._tasks = [
            asyncio.create_task(self._hold(tool, secrets.get(tool.id), made), name=TASK_NAME)
            for tool, made in zip(self._tools, ready, strict=True)
        ]
        # Shielded: a cancelled answer leaves the servers to close(). Every outcome is
        # collected, so that none is reported as never retrieved.
        outcomes = await asyncio.gather(*map(asyncio.shield, ready), return_exceptions=True)
        tools: list[Tool] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            tools.extend(outcome)
        return tools

    async def close(self) -> None:
        """Close the servers (shielded: a cancelled response closes them too)."""
        self._done.set()
        if not self._tasks:
            return
        with anyio.CancelScope(shield=True):
            done, pending = await asyncio.wait(self._tasks, timeout=CLOSE_SECONDS)
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: logged by the SDK already, if any

    async def _hold(
        self, tool: McpTool, secret: McpSecret | None, ready: asyncio.Future[list[Tool]]
    ) -> None:
        """Connect to ``tool``'s server, hand its tools to ``ready``, and keep it open until
        the answer ends."""
        try:
            async with self._connector.connected(tool, secret) as (server, listed):
                ready.set_result(
                    [
                        _labelled(MCPUtil.to_function_tool(info, server, False), tool.label)
                        for info in listed
                    ]
                )
                await self._done.wait()
        except McpUnavailable as exc:
            if not ready.done():
                ready.set_result(_unavailable_tools(tool, exc.reason))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise
