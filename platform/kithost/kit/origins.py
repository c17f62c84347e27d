"""Web origins and the patterns that allow them.

An origin is what browsers send in the ``Origin`` header: ``scheme://host[:port]``. An
allowed-origin entry is either an exact origin or a wildcard pattern
``scheme://*.domain[:port]``, where ``*`` stands for one or more labels (any depth:
``https://*.example.com`` allows ``https://a.example.com`` and ``https://a.b.example.com``
but not ``https://example.com`` itself). Everything is normalised the same way: lowercase,
IDN hosts in punycode, default ports dropped, no trailing dot. A visitor's page is admitted
only with an ``Origin`` already in that form (:func:`is_browser_origin`), the one browsers send.
"""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit

import idna

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ORIGIN_LENGTH = 255
"""The longest origin a page may be allowed from: what Kithost keeps of one (an allowed
origin, a session's) fits in 255 characters. A wildcard pattern would otherwise match a
host up to DNS's 253 characters, plus scheme and port."""
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
WILDCARD = "*."


class InvalidOrigin(ValueError):
    """Not an origin or an origin pattern; the message says why."""


def _split(value: str) -> tuple[str, str, int | None]:
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. an unclosed or invalid [IPv6] host
        raise InvalidOrigin(f"not a URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or "://" not in text:
        raise InvalidOrigin("the scheme must be http or https")
    if parts.username is not None or parts.password is not None:
        raise InvalidOrigin("an origin has no user or password")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or "?" in text or "#" in text:
        raise InvalidOrigin("an origin has no path, query or fragment")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidOrigin("the port must be a number from 1 to 65535") from exc
    if port == 0:
        raise InvalidOrigin("the port must be a number from 1 to 65535")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    host = netloc[: netloc.rindex("]") + 1] if netloc.startswith("[") else netloc.split(":")[0]
    if not host:
        raise InvalidOrigin("an origin needs a host")
    return scheme, host, None if port == DEFAULT_PORTS[scheme] else port


def _normalize_host(host: str) -> str:
    if host.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError as exc:
            raise InvalidOrigin("not a valid IPv6 address") from exc
    host = host.rstrip(".").lower()
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidOrigin(f"not a valid host name: {exc}") from exc


def _join(scheme: str, host: str, port: int | None) -> str:
    return f"{scheme}://{host}" if port is None else f"{scheme}://{host}:{port}"


def normalize_pattern(value: str, *, allow_insecure: bool = False) -> str:
    """The canonical form of an allowed-origin entry (exact or ``*.`` wildcard).

    Plain ``http://`` is refused outside localhost unless ``allow_insecure``.
    """
    scheme, host, port = _split(value)
    wildcard = host.startswith(WILDCARD)
    rest = host.removeprefix(WILDCARD) if wildcard else host
    if "*" in rest:
        raise InvalidOrigin("'*' may only stand as the leftmost label, as in https://*.example.com")
    normalized = _normalize_host(rest)
    if wildcard and (normalized.count(".") < 1 or normalized.startswith("[") or _is_ip(normalized)):
        raise InvalidOrigin("a wildcard needs a domain of at least two labels after '*.'")
    if scheme == "http" and not allow_insecure and normalized not in LOCAL_HOSTS:
        raise InvalidOrigin("http:// is only allowed for localhost unless insecure origins are on")
    return _join(scheme, WILDCARD + normalized if wildcard else normalized, port)


def origin_of(url: str) -> str:
    """The origin of ``url`` (an absolute http(s) URL, a path allowed), in its normal form."""
    parts = urlsplit(url.strip())
    return normalize_pattern(f"{parts.scheme}://{parts.netloc}", allow_insecure=True)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def normalize_origin(value: str) -> str:
    """One page's origin in the form its browser sends it (scheme and host in lowercase, an
    IDN host in punycode, no default port, no trailing slash); :class:`InvalidOrigin` for
    what names no single page (a pattern, a path)."""
    scheme, host, port = _split(value)
    if "*" in host:
        raise InvalidOrigin("an origin names one page's scheme, host and port: no '*'")
    return _join(scheme, _normalize_host(host), port)


@functools.lru_cache(maxsize=4096)
def is_browser_origin(origin: str) -> bool:
    """Whether ``origin`` is spelled as browsers send an ``Origin``: its own normal form
    (scheme and host in lowercase, an IDN host in punycode, no default port, no trailing dot
    or slash). Other spellings of an allowed origin (``https://SHOP.example.com``,
    ``https://shop.example.com:443``, ``https://shop.example.com/``) come from no browser;
    ``https://shop.example.com.`` (trailing dot) is another origin to browsers, whose pages
    ``frame-ancestors https://shop.example.com`` does not admit. Cached: the visitor routes
    ask on every request."""
    try:
        return normalize_origin(origin) == origin
    except InvalidOrigin:
        return False


def origin_matches(origin: str, pattern: str) -> bool:
    """Whether the browser ``origin`` is allowed by the normalised ``pattern``."""
    try:
        scheme, host, port = _split(origin)
        host = _normalize_host(host)
    except InvalidOrigin:
        return False
    if len(_join(scheme, host, port)) > MAX_ORIGIN_LENGTH:  # punycode may have grown it
        return False
    p_scheme, p_host, p_port = _split(pattern)
    if (scheme, port) != (p_scheme, p_port):
        return False
    if p_host.startswith(WILDCARD):
        suffix = p_host[1:]
        return host.endswith(suffix) and len(host) > len(suffix) and not host.startswith(".")
    return host == p_host


def origin_allowed(origin: str | None, patterns: list[str]) -> bool:
    return origin is not None and any(origin_matches(origin, p) for p in patterns)
