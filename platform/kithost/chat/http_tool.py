"""A widget's ``http`` tool: the tenant's endpoint as an Agents SDK function tool.

When the model calls it, Kithost sends (``method``, ``application/json``)::

    {"tool": name, "call_id": …, "arguments": {…}, "end_user": "u:…"|"a:…", "thread_id": …}

through ``kit.outbound`` (public addresses only, unless the deployment opens others; HTTPS
outside those), with two headers the endpoint checks:

- ``Kithost-Timestamp``: Unix seconds when it was sent (refuse old ones: replays);
- ``Kithost-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with the widget's tool
  secret (``kts_…``, its UTF-8 bytes), of ``"{timestamp}." + body`` (the body's exact bytes).

A 2xx answer's JSON (at most ``max_response_bytes``) goes back to the model (a lone
surrogate's escape in it, ``"\\ud800"``, as U+FFFD: ``kit.surrogates``). Anything
else — no secret, a refused address, a timeout, another status, a body too large or not
JSON, arguments that are not a JSON object — becomes ``{"error": …}`` for the model to
explain: a tool never fails the response.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
from agents import FunctionTool
from agents.tool_context import ToolContext
from chatkit.agents import AgentContext
from chatkit.types import ProgressUpdateEvent

from kithost.chat.context import ChatContext
from kithost.kit.outbound import (
    OutboundPolicy,
    OutboundRefused,
    Resolver,
    outbound_client,
    refused_in,
)
from kithost.kit.surrogates import without_lone_surrogates
from kithost.widgets.config import HttpTool

TIMESTAMP_HEADER = "Kithost-Timestamp"
SIGNATURE_HEADER = "Kithost-Signature"
NOT_JSON = "The tool's answer is not JSON."


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``Kithost-Signature`` of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class ToolFailed(Exception):
    """What the model is told instead of the endpoint's answer."""


@dataclass(frozen=True)
class HttpToolRunner:
    """Calls one widget's ``http`` tools, signed with its ``secret`` (None: it has none)."""

    secret: str | None
    policy: OutboundPolicy
    resolver: Resolver
    max_calls: int | None = None
    """The answer's ``limits.max_tool_calls``: a call beyond it is never sent (the answer
    stops on the call's event too: ``agent.limited``)."""
    _sent: list[str] = field(default_factory=list)

    def function_tool(self, tool: HttpTool) -> FunctionTool:
        async def invoke(run: ToolContext[AgentContext[ChatContext]], raw: str) -> str:
            # Annotated ToolContext: the SDK then passes the call's context (with its id).
            context = run.context
            await context.stream(ProgressUpdateEvent(icon="bolt", text=tool.label))
            try:
                answer = await self.call(tool, raw, context, run.tool_call_id)
                # json reads "\ud800" as a lone surrogate, which no model request can carry.
                return without_lone_surrogates(json.dumps(answer, ensure_ascii=False))
            except ToolFailed as exc:
                return json.dumps({"error": str(exc)})
            except RecursionError:  # nested deeper than json can write back
                return json.dumps({"error": NOT_JSON})

        return FunctionTool(
            name=tool.name,
            description=tool.description,
            params_json_schema=tool.parameters,
            on_invoke_tool=invoke,
            strict_json_schema=False,
        )

    async def call(
        self, tool: HttpTool, raw: str, context: AgentContext[ChatContext], call_id: str | None
    ) -> Any:
        if self.secret is None:
            raise ToolFailed("This tool is not set up yet (the widget has no tool secret).")
        if self.max_calls is not None and len(self._sent) >= self.max_calls:
            raise ToolFailed("This answer may call no more tools.")
        self._sent.append(tool.name)
        try:
            arguments = json.loads(raw or "{}")
        except ValueError:
            raise ToolFailed("The arguments are not JSON.") from None
        if not isinstance(arguments, dict):
            raise ToolFailed("The arguments are not a JSON object.")
        url = str(tool.url)
        refused = self.policy.https_refusal(url)
        if refused is not None:
            raise ToolFailed(f"Kithost may not call this tool's address: {refused}")
        body = json.dumps(
            {
                "tool": tool.name,
                "call_id": call_id,
                "arguments": arguments,
                "end_user": context.request_context.end_user_id,
                "thread_id": context.thread.id,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self.secret, timestamp, body),
        }
        try:
            status, content = await self._send(tool, url, body, headers)
        except TimeoutError:
            raise ToolFailed(
                f"The tool did not answer within {tool.timeout_seconds:g} s."
            ) from None
        except (httpx2.HTTPError, OutboundRefused) as exc:
            refusal = refused_in(exc)
            if refusal is not None:
                raise ToolFailed(f"Kithost may not call this tool's address: {refusal}") from None
            raise ToolFailed(f"The tool could not be reached ({type(exc).__name__}).") from None
        if not 200 <= status < 300:
            raise ToolFailed(f"The tool answered with HTTP status {status}.")
        try:
            return json.loads(content) if content else None
        except (ValueError, RecursionError):  # RecursionError: nested too deep to read
            raise ToolFailed(NOT_JSON) from None

    async def _send(
        self, tool: HttpTool, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """The status and body; :class:`ToolFailed` beyond ``max_response_bytes``."""
        limit = tool.max_response_bytes
        async with (
            asyncio.timeout(tool.timeout_seconds),
            outbound_client(
                self.policy, timeout=tool.timeout_seconds, resolver=self.resolver
            ) as client,
            client.stream(tool.method.value, url, content=body, headers=headers) as response,
        ):
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise ToolFailed(f"The tool's answer is larger than {limit} bytes.")
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > limit:
                    raise ToolFailed(f"The tool's answer is larger than {limit} bytes.")
            return response.status_code, bytes(content)
