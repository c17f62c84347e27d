"""Web origins as browsers send them in the ``Origin`` header: ``scheme://host[:port]``."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str:
    """The canonical form of an origin (lowercase, default port dropped); ``ValueError`` when
    ``value`` is not an http(s) origin without path, query, fragment or credentials."""
    parts = urlsplit(value.strip())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("an origin is http(s)://host[:port]")
    if parts.username or parts.password or parts.path not in {"", "/"} or parts.query:
        raise ValueError("an origin has no credentials, path or query")
    if parts.fragment:
        raise ValueError("an origin has no fragment")
    port = parts.port
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"
