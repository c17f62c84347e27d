"""Security headers on every response: ``X-Content-Type-Options: nosniff`` and a
``Referrer-Policy``; an HTML page that sets no ``Content-Security-Policy`` of its own (the API
browser) may not be framed (``frame-ancestors 'none'``). Pages that set one (the framed chat
page: framed by the widget's allowed origins only; attachment previews: sandboxed) keep it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]
UNFRAMED = (b"content-security-policy", b"frame-ancestors 'none'")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
                names = {name.lower(): value for name, value in headers}
                headers.extend(h for h in ALWAYS if h[0] not in names)
                html = names.get(b"content-type", b"").startswith(b"text/html")
                if html and UNFRAMED[0] not in names:
                    headers.append(UNFRAMED)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
