"""What a production deployment needs at the edge of the app: which proxies may say who the
client is, and which host names the app answers to.

Client address and scheme come from ``X-Forwarded-For`` / ``X-Forwarded-Proto`` only when
the connection comes from ``KITHOST_TRUSTED_PROXIES`` (uvicorn's own middleware does the
parsing; ``kithost serve`` leaves uvicorn's ``proxy_headers`` off so this setting alone
decides). Everything downstream — rate limits keyed by client address, secure cookies,
logs — then reads ``request.client`` and ``request.url.scheme`` as usual.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from kithost.errors import problem_response

PROBE_PATHS = frozenset({"/healthz", "/readyz"})
"""Paths the kubelet calls by the pod's address: no host name to check. Under an allowed name
they are 404, so the Ingress (or any proxy) that forwards the public host does not publish
them. (Prometheus scrapes the metrics port, ``KITHOST_METRICS_PORT``, which is not the app's.)"""


class AllowedHostsMiddleware:
    """400 ``invalid_host`` (problem+json) for a ``Host`` header outside the allowed names;
    404 for the probes under one of them."""

    def __init__(self, app: ASGIApp, hosts: list[str]) -> None:
        self.app = app
        self.exact = frozenset(h for h in hosts if not h.startswith("*."))
        self.suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))

    def allows(self, host: str) -> bool:
        return host in self.exact or host.endswith(self.suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _host(scope)
        if scope["path"] in PROBE_PATHS:
            if not self.allows(host):  # the pod's address: the kubelet
                await self.app(scope, receive, send)
                return
            response = problem_response(Request(scope), 404, "not_found", "Not Found")
        elif self.allows(host):
            await self.app(scope, receive, send)
            return
        else:
            response = problem_response(
                Request(scope), 400, "invalid_host", f"This server does not answer to {host!r}."
            )
        await response(scope, receive, send)


def _host(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"host":
            host = value.decode("latin-1").lower()
            # Strip the port; an IPv6 literal keeps its brackets.
            return host.rsplit(":", 1)[0] if host.rfind(":") > host.rfind("]") else host
    return ""


def install_edge(app: FastAPI, *, allowed_hosts: list[str], trusted_proxies: list[str]) -> None:
    """Add the host check and the trusted-proxy handling to ``app`` (a FastAPI app), the
    proxy handling outermost so the host check and everything after see the real client.
    ``allowed_hosts``: lowercase, ``*`` for any (``Settings.allowed_host_list``);
    ``trusted_proxies``: addresses or CIDRs (``Settings.trusted_proxy_list``)."""
    if "*" not in allowed_hosts:
        app.add_middleware(AllowedHostsMiddleware, hosts=allowed_hosts)
    if trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted_proxies)
