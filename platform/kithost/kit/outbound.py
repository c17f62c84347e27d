"""The one HTTP client for URLs a tenant chooses (an agent's ``base_url``; later MCP servers,
HTTP tools, webhooks): a tenant's reach into Kithost's network, so it only reaches public
addresses.

- Every connection resolves the host itself, checks **every** address it resolves to, and
  connects to a checked address (never the name again): a name that resolves to a public
  address when saved and to an internal one at run time (DNS rebinding) is refused when it
  connects. A redirect opens its own connection, so it is checked the same way.
- Refused by default: every address that is not public — unspecified (``0.0.0.0``, ``::``),
  loopback, private, link-local (the cloud metadata service), unique-local, site-local
  (the deprecated ``fec0::/10``), multicast, shared (CGNAT), documentation and reserved
  ranges — also written IPv4-mapped, 6to4 or NAT64 (``::ffff:127.0.0.1``).
- ``KITHOST_OUTBOUND_ALLOW`` (comma-separated CIDRs or host names) opens exceptions for
  models or tools on the deployment's own network. Unset, it allows loopback, so ``make
  run`` and the tests reach their local servers, except in production, where it allows
  nothing.
- No proxy from the environment (a proxy would resolve the name itself), no redirects
  unless a caller asks for them, no cookies (:func:`no_cookies`: a client serves many
  tenants, and a cookie one tenant's server set would go with another's requests).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2
import structlog

log = structlog.get_logger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port)`` → the addresses to connect to, as strings."""

LOOPBACK = "127.0.0.0/8,::1/128"
"""What an unset ``KITHOST_OUTBOUND_ALLOW`` allows outside production
(``Settings.outbound_policy``)."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")


class OutboundRefused(Exception):
    """A connection Kithost will not open: the host is (or resolves to) no public address."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not public (None: it is)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return refusal(embedded)
    checks: tuple[tuple[str, bool], ...] = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unique-local", isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("shared (CGNAT)", isinstance(address, ipaddress.IPv4Address) and address in _SHARED),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not global", not address.is_global),
    )
    return next((name for name, refused in checks if refused), None)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, 6to4, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class OutboundPolicy:
    """Which hosts and addresses an outbound connection may reach beyond public ones."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, allow: str) -> OutboundPolicy:
        """From ``KITHOST_OUTBOUND_ALLOW``'s form: CIDRs (or addresses) and host names,
        comma-separated. Raises ``ValueError`` for an entry that is neither."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in (e.strip().lower() for e in allow.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not _is_host_name(entry):
                    raise ValueError(f"not a CIDR or host name: {entry!r}") from None
                hosts.add(entry.rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def address_refusal(self, address: IPAddress) -> str | None:
        """Why a connection to ``address`` is refused (None: it is allowed)."""
        candidates = [address, _embedded_ipv4(address)]
        if any(
            a is not None and a.version == n.version and a in n
            for a in candidates
            for n in self.networks
        ):
            return None
        return refusal(address)

    def url_refusal(self, url: str) -> str | None:
        """Why a URL can never be fetched, whatever names resolve to (None: it may be): an
        address written in it that is refused. Names are checked when they connect."""
        host = urlsplit(url).hostname
        if host is None:
            return "no host"
        if self.allows_host(host):
            return None
        address = _address(host)
        if address is None:
            return (
                None if _fits_dns(host) else "longer than a host name can be (DNS: 253, 63 a label)"
            )
        return self.address_refusal(address)

    def opens(self, host: str) -> bool:
        """Whether the deployment opened ``host`` itself (by name, or a non-public address
        in its CIDRs): where plain ``http://`` is allowed."""
        address = _address(host)
        if address is None:
            return self.allows_host(host)
        return self.address_refusal(address) is None and not address.is_global

    def https_refusal(self, url: str) -> str | None:
        """:meth:`url_refusal`, and plain ``http://`` only to what the deployment opened."""
        refused = self.url_refusal(url)
        if refused is not None:
            return refused
        parts = urlsplit(url)
        if parts.scheme != "https" and not self.opens(parts.hostname or ""):
            return "https:// is required (http only where KITHOST_OUTBOUND_ALLOW opens)"
        return None

    async def addresses(self, host: str, port: int, resolver: Resolver) -> list[str]:
        """The addresses to connect to for ``host``; :class:`OutboundRefused` when any is
        refused (a name that resolves to one internal address is not trusted for the others).
        A name's refusal says only that it does not resolve or is not a public address (its
        tenant may show it to anyone): what it resolves to, or the resolver's error, is logged."""
        literal = _address(host)
        if literal is not None:
            found = [literal]
        else:
            try:
                answers = list(await resolver(host, port))
            except OSError as exc:
                log.warning(
                    "outbound.refused", host=host, reason="does not resolve", error=str(exc)
                )
                raise OutboundRefused(host, "does not resolve") from exc
            if answers and self.allows_host(host):  # opened by name: whatever it resolves to
                return answers
            found = [ipaddress.ip_address(a.split("%")[0]) for a in answers]
        if not found:
            raise OutboundRefused(host, "does not resolve")
        for address in found:
            reason = self.address_refusal(address)
            if reason is None:
                continue
            if literal is not None:  # the caller wrote it: why is no news to them
                raise OutboundRefused(host, f"{reason}, not a public address")
            log.warning("outbound.refused", host=host, address=str(address), reason=reason)
            raise OutboundRefused(host, "not a public address")
        return [str(a) for a in found]


def origin_of(url: str) -> str:
    """``scheme://host:port`` (the port always written): the server a URL reaches, and all of
    it that may be shown where the URL itself may not (its path or query may hold a token)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{port}"


def _address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _fits_dns(host: str) -> bool:
    """Whether DNS could resolve ``host`` at all: at most 253 characters, 63 a label (URL
    parsers take longer ones; such a host would also outgrow the columns that keep where a
    secret may go)."""
    name = host.rstrip(".")
    return len(name) <= 253 and all(0 < len(label) <= 63 for label in name.split("."))


def _is_host_name(value: str) -> bool:
    labels = value.rstrip(".").split(".")
    return all(0 < len(label) <= 63 and label.replace("-", "").isalnum() for label in labels)


class _CheckedBackend(httpcore2.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked one."""

    def __init__(
        self, policy: OutboundPolicy, resolver: Resolver, inner: httpcore2.AsyncNetworkBackend
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        with anyio.fail_after(timeout):
            addresses = await self._policy.addresses(host, port, self._resolver)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # addresses is never empty
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise OutboundRefused(path, "a Unix socket is not a public address")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The process's TLS settings for outbound calls (the system's CA bundle, no
    environment): made once, as loading the bundle takes ~18 ms and a context is safe to
    share, instead of twice for every client (each ``http`` tool call makes one)."""
    return httpx2.create_ssl_context(trust_env=False)


class CheckedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport, whose connections go through :class:`_CheckedBackend`."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolver: Resolver = system_resolver,
        backend: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(verify=ssl_context(), trust_env=False)
        # httpx2's transport takes no network backend: its pool, built again with ours.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context(),
            network_backend=_CheckedBackend(policy, resolver, backend or httpcore2.AnyIOBackend()),
        )


def no_cookies() -> CookieJar:
    """A client's cookie jar that keeps nothing: every ``Set-Cookie`` is ignored."""
    return CookieJar(DefaultCookiePolicy(allowed_domains=[]))


def outbound_client(
    policy: OutboundPolicy,
    *,
    timeout: float,
    follow_redirects: bool = False,
    resolver: Resolver = system_resolver,
    backend: httpcore2.AsyncNetworkBackend | None = None,
) -> httpx2.AsyncClient:
    """A client for tenant-chosen URLs. ``backend`` (the real network by default) and
    ``resolver`` are for tests."""
    return httpx2.AsyncClient(
        transport=CheckedTransport(policy, resolver=resolver, backend=backend),
        timeout=timeout,
        follow_redirects=follow_redirects,
        cookies=no_cookies(),
        trust_env=False,
    )


def refused_in(error: BaseException) -> OutboundRefused | None:
    """The :class:`OutboundRefused` behind ``error`` (a client library wraps it), if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OutboundRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
