"""Limits every request meets before a route sees it: the size of its headers and body, and
how long its body may take to arrive.

Headers over ``KITHOST_MAX_HEADER_BYTES`` are answered 431 at once. A body over the route's
limit (:func:`body_limit`: ``KITHOST_MAX_BODY_BYTES``, or the larger one of a route that
takes uploads; the chat routes limit their own) is 413: at once when ``Content-Length``
says so, else (Starlette's body limiter) as soon as the bytes read pass it. A body whose next part
takes longer than ``KITHOST_BODY_TIMEOUT_SECONDS`` is 408 (:class:`BodyTimeout`).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from starlette.middleware.body_limit import RequestBodyLimitResponder
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kithost.errors import KithostError, problem_response

UPLOAD_OVERHEAD = 64 * 1024
"""Room for a multipart upload's boundaries and part headers."""
_CHAT = re.compile(r"^/v1/chatkit/")
_DOCUMENTS = re.compile(r"^/api/v1/tenants/[^/]+/knowledge-bases/[^/]+/documents$")


class BodyTimeout(KithostError):
    status, code = 408, "request_timeout"


@dataclass(frozen=True)
class Limits:
    """The limits of :class:`LimitsMiddleware` (``Settings.limits``)."""

    max_header_bytes: int
    max_body_bytes: int
    max_document_bytes: int
    """A knowledge base's document (its upload route's body gets :data:`UPLOAD_OVERHEAD` more)."""
    body_timeout_seconds: float


def body_limit(limits: Limits, path: str) -> int | None:
    """The most bytes a request body to ``path`` may have; None for the chat routes, which
    limit their bodies themselves (with the CORS headers the visitor's page needs to read
    the refusal)."""
    if _CHAT.match(path):
        return None
    if _DOCUMENTS.match(path):
        return limits.max_document_bytes + UPLOAD_OVERHEAD
    return limits.max_body_bytes


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size, length, chunked = 0, None, False
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        most = self.limits.max_header_bytes
        if size > most:
            detail = f"The request's headers may have at most {most} bytes."
            await self._refuse(scope, receive, send, 431, "headers_too_large", detail)
            return
        if length is None and not chunked:  # no body (most GETs): nothing more to watch
            await self.app(scope, receive, send)
            return
        limit = body_limit(self.limits, scope["path"])
        timed = _Timed(receive, self.limits.body_timeout_seconds)
        if limit is None:
            await self.app(scope, timed, send)
            return
        if length is not None and length.isdigit() and int(length) > limit:
            # Said up front: answered as a problem before the route runs (Starlette's
            # limiter would answer plain text to a route that never reads the body).
            detail = f"The request body may have at most {limit} bytes."
            await self._refuse(scope, receive, send, 413, "payload_too_large", detail)
            return
        await RequestBodyLimitResponder(self.app, limit)(scope, timed, send)

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str
    ) -> None:
        await problem_response(Request(scope), status, code, detail)(scope, receive, send)


class _Timed:
    """``receive``, timing each part of the body until the last."""

    def __init__(self, receive: Receive, timeout: float) -> None:
        self.receive, self.timeout = receive, timeout
        self.done = False

    async def __call__(self) -> Message:
        if self.done:
            return await self.receive()
        try:
            async with asyncio.timeout(self.timeout):  # no task per call, as wait_for makes
                message = await self.receive()
        except TimeoutError:
            raise BodyTimeout(f"The request body did not arrive within {self.timeout} s.") from None
        self.done = message["type"] != "http.request" or not message.get("more_body", False)
        return message
