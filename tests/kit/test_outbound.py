"""The outbound client refuses every address that is not public, checked on the address it
connects to, on every connection and redirect. Names resolve through a test resolver: no
test sends anything off this machine (a refused address is never connected to, and the
backend below records every connection attempt)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore2
import pytest

from kithost.kit import outbound
from kithost.kit.outbound import OutboundPolicy, OutboundRefused, outbound_client
from kithost.settings import Environment, Settings

REFUSED = [
    ("0.0.0.0", "unspecified"),  # noqa: S104 (an address refused, nothing binds)
    ("::", "unspecified"),
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("fd00::1", "unique-local"),
    ("fec0::1", "site-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("2002:7f00:1::1", "loopback"),
    ("64:ff9b::a00:1", "private"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("192.0.2.1", "private"),
    ("240.0.0.1", "reserved"),
]


@dataclass
class RecordingBackend(httpcore2.AsyncNetworkBackend):
    """The real network, with every connection attempt written down."""

    attempts: list[tuple[str, int]] = field(default_factory=list)
    inner: httpcore2.AsyncNetworkBackend = field(default_factory=httpcore2.AnyIOBackend)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        self.attempts.append((host, port))
        assert host in {"127.0.0.1", "::1"}, "a test tried to leave this machine"
        return await self.inner.connect_tcp(host, port, timeout=timeout)


class Resolver:
    """Names → addresses, as the test says (``model_example`` is ``model.example``); a
    name's answers change with :meth:`rebind`."""

    def __init__(self, **names: list[str]) -> None:
        self.names = {name.replace("_", "."): answers for name, answers in names.items()}

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        return self.names[host]

    def rebind(self, host: str, answers: list[str]) -> None:
        self.names[host] = answers


@dataclass
class Server:
    """A loopback HTTP server answering every request with ``response``."""

    port: int = 0
    response: bytes = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(self.response)
        await writer.drain()
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    found = Server()
    listening = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield found


@pytest.mark.parametrize(("address", "reason"), REFUSED)
async def test_every_address_that_is_not_public_is_refused_without_connecting(
    address: str, reason: str
) -> None:
    backend = RecordingBackend()
    resolver = Resolver(model_tenant_example=[address])
    literal = f"[{address}]" if ":" in address else address
    async with outbound_client(
        OutboundPolicy(), timeout=2, resolver=resolver, backend=backend
    ) as client:
        for url in ("http://model.tenant.example:8080/v1", f"http://{literal}:8080/v1"):
            with pytest.raises(OutboundRefused) as refused:
                await client.get(url)
            assert refused.value.reason == (
                "not a public address" if "tenant" in url else f"{reason}, not a public address"
            ), "a name's refusal says nothing of what it resolves to (the log does)"
    assert backend.attempts == []


async def test_a_name_with_one_internal_address_among_public_ones_is_refused() -> None:
    backend = RecordingBackend()
    resolver = Resolver(mixed_example=["93.184.215.14", "10.1.2.3"])
    async with outbound_client(
        OutboundPolicy(), timeout=2, resolver=resolver, backend=backend
    ) as c:
        with pytest.raises(OutboundRefused, match=r"^mixed\.example: not a public address$"):
            await c.get("https://mixed.example/")
    assert backend.attempts == []


async def test_a_names_refusal_tells_the_log_what_it_resolves_to_and_no_one_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The refusal's text reaches tenants and visitors (MCP discovery, webhook logs, http
    tools): it named the address a name resolved to, or the resolver's error."""

    async def unknown(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    logs: list[dict[str, Any]] = []

    class Recorded:
        """The module's logger (structlog caches a logger once used: capture_logs misses it)."""

        def warning(self, event: str, **fields: Any) -> None:
            logs.append({"event": event, **fields})

    monkeypatch.setattr(outbound, "log", Recorded())
    shown = []
    resolver = Resolver(internal_example=["10.1.2.3"])
    for name, resolving in (("internal.example", resolver), ("unknown.example", unknown)):
        async with outbound_client(OutboundPolicy(), timeout=2, resolver=resolving) as c:
            with pytest.raises(OutboundRefused) as refused:
                await c.get(f"https://{name}/")
        shown.append(str(refused.value))
    assert shown == [
        "internal.example: not a public address",
        "unknown.example: does not resolve",
    ]
    assert [(log["host"], log.get("address"), log["reason"]) for log in logs] == [
        ("internal.example", "10.1.2.3", "private"),
        ("unknown.example", None, "does not resolve"),
    ]
    assert "Name or service not known" in logs[1]["error"]


async def test_each_connection_checks_the_address_it_connects_to(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name resolved to an allowed address, then to an internal one. The
    allowed connection goes to the checked address (never the name again), the next one is
    refused; no proxy from the environment is used."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    backend = RecordingBackend()
    resolver = Resolver(rebind_example=["127.0.0.1"])
    policy = OutboundPolicy.parse("127.0.0.1/32")
    url = f"http://rebind.example:{server.port}/v1/models"
    async with outbound_client(policy, timeout=2, resolver=resolver, backend=backend) as client:
        assert (await client.get(url)).text == "ok"
    resolver.rebind("rebind.example", ["10.0.0.7"])
    async with outbound_client(policy, timeout=2, resolver=resolver, backend=backend) as client:
        with pytest.raises(OutboundRefused, match=r"^rebind\.example: not a public address$"):
            await client.get(url)
    assert backend.attempts == [("127.0.0.1", server.port)]
    [request] = server.requests
    assert request.startswith(b"GET /v1/models HTTP/1.1\r\n")
    assert f"host: rebind.example:{server.port}".encode() in request.lower()


async def test_a_redirect_is_checked_like_the_first_request(server: Server) -> None:
    server.response = (
        b"HTTP/1.1 302 Found\r\nlocation: http://metadata.example/latest/\r\n"
        b"content-length: 0\r\n\r\n"
    )
    backend = RecordingBackend()
    resolver = Resolver(tools_example=["127.0.0.1"], metadata_example=["169.254.169.254"])
    policy = OutboundPolicy.parse("127.0.0.0/8")
    async with outbound_client(
        policy, timeout=2, follow_redirects=True, resolver=resolver, backend=backend
    ) as client:
        with pytest.raises(OutboundRefused, match=r"^metadata\.example: not a public address$"):
            await client.get(f"http://tools.example:{server.port}/hook")
    assert backend.attempts == [("127.0.0.1", server.port)]


async def test_the_allow_list_opens_networks_and_host_names() -> None:
    policy = OutboundPolicy.parse(" 10.20.0.0/16 , ollama.internal. ,fd12::/16")
    resolver = Resolver(gpu_internal=["10.20.3.4"], ollama_internal=["10.99.0.1"])
    assert await policy.addresses("gpu.internal", 443, resolver) == ["10.20.3.4"]
    assert await policy.addresses("ollama.internal", 443, resolver) == ["10.99.0.1"]
    assert await policy.addresses("::ffff:10.20.0.9", 80, resolver) == ["::ffff:a14:9"]
    assert await policy.addresses("fd12::5", 80, resolver) == ["fd12::5"]
    with pytest.raises(OutboundRefused):
        await policy.addresses("10.21.0.1", 80, resolver)
    with pytest.raises(ValueError, match="not a CIDR or host name"):
        OutboundPolicy.parse("10.0.0.0/8, http://evil")


async def test_an_allowed_name_that_does_not_resolve_is_refused_like_any_other() -> None:
    """The resolver's error (or no address at all: an AssertionError) escaped unwrapped for a
    name the allow list opens, where callers expect an HTTP error or a refusal."""

    async def unknown(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    policy = OutboundPolicy.parse("tools.internal")
    for resolver in (unknown, Resolver(tools_internal=[])):
        async with outbound_client(policy, timeout=2, resolver=resolver) as client:
            with pytest.raises(OutboundRefused, match=r"^tools\.internal: does not resolve$"):
                await client.get("http://tools.internal/hook")


def test_a_url_whose_address_can_never_be_allowed_is_known_before_any_connection() -> None:
    policy = OutboundPolicy.parse("10.0.0.0/8")
    assert policy.url_refusal("http://0.0.0.0:8080/v1") == "unspecified"
    assert policy.url_refusal("http://[::ffff:169.254.169.254]/v1") == "link-local"
    assert policy.url_refusal("http://10.1.1.1/v1") is None
    assert policy.url_refusal("https://models.example/v1") is None  # checked when it connects
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters
    assert policy.url_refusal(f"https://{longest}/v1") is None
    assert policy.url_refusal(f"https://{longest}b/v1") is not None
    assert policy.url_refusal(f"https://{'a' * 64}.example/v1") is not None


def test_loopback_is_allowed_by_default_except_in_production() -> None:
    assert Settings().outbound_policy == OutboundPolicy.parse("127.0.0.0/8,::1/128")
    production = Settings(
        env=Environment.production,
        database_url="postgresql+psycopg://kithost@db/kithost",
        broker_url="redis://redis:6379/0",
        public_url="https://kithost.example.com",
    )
    assert production.outbound_policy == OutboundPolicy()
    chosen = production.model_copy(update={"outbound_allow": "10.0.0.0/8"})
    assert chosen.outbound_policy == OutboundPolicy.parse("10.0.0.0/8")
