"""Security headers on every response: ``X-Content-Type-Options: nosniff``, a
``Referrer-Policy`` and, when told (production on https), ``Strict-Transport-Security``: a
browser that once reached Kithost over https never again tries http, where a network could
answer in its place.

Every HTML page has a ``Content-Security-Policy`` built by :func:`page_policy` (no plugins,
no ``<base>``, and who may frame it); a page that sets none of its own (the API browser) gets
the strictest, unframed one. Pages that set one (the framed chat page: framed by the widget's
allowed origins only; attachment previews: sandboxed) keep it.

Every answer under ``/api/`` is private: a tenant's data, and sometimes a secret shown once (an
API client's secret, an invitation's link, a webhook's signing secret, a sign-in's CSRF
token). Unless its route sets a ``Cache-Control`` of its own, it gets ``no-store``, so that no
browser or proxy cache keeps it. (Routes outside ``/api/`` say themselves how they may be
cached: the visitor routes, the token endpoint, the dashboard's files.)
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]


def page_policy(*directives: str) -> str:
    """An HTML page's ``Content-Security-Policy``: ``directives`` (who may frame it, where its
    scripts come from) after what holds for every page."""
    return "; ".join(("object-src 'none'", "base-uri 'none'", *directives))


UNFRAMED = (b"content-security-policy", page_policy("frame-ancestors 'none'").encode())
API = "/api/"
PRIVATE = (b"cache-control", b"no-store")
HSTS = (b"strict-transport-security", b"max-age=31536000")
"""A year; not ``includeSubDomains``: other hosts of the domain are not Kithost's to decide."""


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.always = [*ALWAYS, HSTS] if hsts else ALWAYS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        api = scope["path"].startswith(API)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
                names = {name.lower(): value for name, value in headers}
                headers.extend(h for h in self.always if h[0] not in names)
                if api and PRIVATE[0] not in names:
                    headers.append(PRIVATE)
                html = names.get(b"content-type", b"").startswith(b"text/html")
                if html and UNFRAMED[0] not in names:
                    headers.append(UNFRAMED)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
