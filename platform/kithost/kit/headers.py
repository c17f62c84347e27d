"""Security headers on every response: ``X-Content-Type-Options: nosniff`` and a
``Referrer-Policy``; an HTML page that sets no ``Content-Security-Policy`` of its own (the API
browser) may not be framed (``frame-ancestors 'none'``). Pages that set one (the framed chat
page: framed by the widget's allowed origins only; attachment previews: sandboxed) keep it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = {"x-content-type-options": "nosniff", "referrer-policy": "strict-origin-when-cross-origin"}
UNFRAMED = "frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                html = headers.get("content-type", "").startswith("text/html")
                if html and "content-security-policy" not in headers:
                    headers["content-security-policy"] = UNFRAMED
            await send(message)

        await self.app(scope, receive, send_with_headers)
