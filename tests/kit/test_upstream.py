"""The model clients read a Responses stream as the openai client does, only cheaper: each
event is checked against the class its ``type`` names instead of against all of them. The
chat runtime's clients share a pool per kind of endpoint, closed with the app, and send a
request once more when its connection was closed before the answer began."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx2
import pytest
from openai import APIConnectionError, APITimeoutError, AsyncOpenAI, DefaultAioHttpClient
from openai.types.responses import ResponseStreamEvent, ResponseTextDeltaEvent

from kithost.app import create_app
from kithost.kit.outbound import LOOPBACK, OutboundPolicy
from kithost.kit.upstream import ModelClients, ModelEndpoint, openai_client
from kithost.settings import Settings
from tests.conftest import state_of
from tests.fakes.openai_server import FakeOpenAI

FUNCTION = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
WEB_SEARCH = {"type": "web_search"}
NOWHERE = "http://127.0.0.1:9/v1"
RESPONSE = httpx2.Response(200, request=httpx2.Request("POST", NOWHERE))


def read(client: AsyncOpenAI, data: dict[str, Any]) -> Any:
    """``data`` as ``client`` reads an event of a Responses stream."""
    union: Any = ResponseStreamEvent
    return client._process_response_data(data=data, cast_to=union, response=RESPONSE)


def clients(base_url: str, api_key: str = "sk-test") -> tuple[AsyncOpenAI, AsyncOpenAI]:
    """Kithost's model client (not the cached one) and the openai client as it comes."""
    ours = openai_client.__wrapped__(api_key, base_url, 10.0)
    return ours, AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0)


async def raw_events(fake: FakeOpenAI, tools: list[Any]) -> list[dict[str, Any]]:
    """The data of each event the fake model streams, as JSON."""
    body = {"model": "gpt-test", "input": "Hello", "tools": tools, "stream": True}
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{fake.base_url}/responses", json=body, headers=headers)
    lines = response.text.splitlines()
    return [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]


@pytest.mark.parametrize(
    "tools", [[], [WEB_SEARCH], [FUNCTION]], ids=["text", "hosted_tool", "function_call"]
)
async def test_each_stream_event_is_what_the_openai_client_makes_of_it(
    fake_openai: FakeOpenAI, tools: list[Any]
) -> None:
    if tools == [FUNCTION]:
        fake_openai.call_function("lookup", {"q": "x"})
    events = await raw_events(fake_openai, tools)
    assert {"response.created", "response.completed"} <= {event["type"] for event in events}
    ours, plain = clients(NOWHERE)
    for data in events:
        mine, theirs = read(ours, data), read(plain, data)
        assert type(mine) is type(theirs)
        assert mine.model_dump() == theirs.model_dump()


async def test_a_streamed_answer_reads_as_its_events(fake_openai: FakeOpenAI) -> None:
    ours, _ = clients(fake_openai.base_url, fake_openai.api_key)
    async with ours:
        stream = await ours.responses.create(model="gpt-test", input="Hello", stream=True)
        read = [event async for event in stream]
    expected = [event["type"] for event in await raw_events(fake_openai, [])]
    assert [event.type for event in read] == expected
    deltas = [event for event in read if isinstance(event, ResponseTextDeltaEvent)]
    assert "".join(event.delta for event in deltas) == fake_openai.reply_text


def test_an_event_that_does_not_validate_is_read_as_leniently_as_the_client_reads_it() -> None:
    bad = {"type": "response.output_text.delta", "delta": 5, "sequence_number": "x"}
    mine, theirs = (read(client, bad) for client in clients(NOWHERE))
    assert isinstance(mine, ResponseTextDeltaEvent)
    assert isinstance(theirs, ResponseTextDeltaEvent)
    assert vars(mine) == vars(theirs)
    assert vars(mine)["delta"] == 5  # as sent, not checked


async def answer(clients: ModelClients, endpoint: ModelEndpoint) -> str:
    stream = await clients.client(endpoint).responses.create(
        model="gpt-test", input="Hello", stream=True
    )
    return "".join([e.delta async for e in stream if isinstance(e, ResponseTextDeltaEvent)])


async def test_the_runtimes_clients_share_a_pool_per_kind_of_endpoint_and_close_it(
    fake_openai: FakeOpenAI,
) -> None:
    clients = ModelClients(10.0, OutboundPolicy.parse(LOOPBACK))
    operator = ModelEndpoint(fake_openai.base_url, fake_openai.api_key, chosen_by_tenant=False)
    tenant = ModelEndpoint(fake_openai.base_url, fake_openai.api_key, chosen_by_tenant=True)
    other_key = ModelEndpoint(fake_openai.base_url, "sk-other", chosen_by_tenant=False)
    try:
        assert await answer(clients, operator) == fake_openai.reply_text
        assert await answer(clients, tenant) == fake_openai.reply_text
        assert clients.client(operator) is clients.client(operator)
        pools = {kind: clients.client(e)._client for kind, e in [("o", operator), ("t", tenant)]}
        assert clients.client(other_key)._client is pools["o"]  # one pool, every key
        assert isinstance(pools["o"], DefaultAioHttpClient)  # openai[aiohttp]'s
        assert pools["t"] is not pools["o"]  # the tenant's URL: the checked transport
        sent = [request.headers["authorization"] for request in fake_openai.requests]
        assert sent == [f"Bearer {fake_openai.api_key}"] * 2
    finally:
        await clients.aclose()
    assert pools["o"].is_closed
    assert pools["t"].is_closed


@contextlib.contextmanager
def cookie_setting_gateway() -> Iterator[tuple[str, list[str | None]]]:
    """A model gateway on loopback whose every answer sets a cookie for the key it was
    sent with: its base URL, and the ``Cookie`` header of each request it got."""
    cookies: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            cookies.append(self.headers.get("cookie"))
            body = b'{"object":"list","data":[]}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.send_header("set-cookie", f"gw={self.headers['authorization'][-4:]}; Path=/")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", cookies
    finally:
        server.shutdown()
        server.server_close()


async def test_a_cookie_one_tenants_gateway_sets_goes_with_no_other_request() -> None:
    """The tenants' endpoints share one client: its cookie jar sent tenant A's gateway
    session with tenant B's requests to the same host. It keeps no cookie."""
    clients = ModelClients(10.0, OutboundPolicy.parse(LOOPBACK))
    try:
        with cookie_setting_gateway() as (base_url, cookies):
            for key in ("sk-tenant-aaaa", "sk-tenant-bbbb", "sk-tenant-aaaa"):
                endpoint = ModelEndpoint(base_url, key, chosen_by_tenant=True)
                await clients.client(endpoint).models.list()
    finally:
        await clients.aclose()
    assert cookies == [None, None, None]


async def test_the_apps_lifespan_closes_its_model_clients(settings: Settings) -> None:
    app = create_app(settings)
    clients = state_of(app).part(ModelClients)
    endpoint = ModelEndpoint(NOWHERE, "sk-test", chosen_by_tenant=False)
    async with app.router.lifespan_context(app):
        assert not clients.client(endpoint)._client.is_closed
    assert clients.client(endpoint)._client.is_closed


Closing = Literal["reused", "every", "never_answers"]


class ClosingProxy:
    """A model server on loopback (the fake, behind a proxy) that closes connections:

    - ``reused``: a connection's second request closes it unanswered, as a server does
      that times an idle kept-alive connection out just as the client reuses it;
    - ``every``: every request closes its connection unanswered;
    - ``never_answers``: requests are read and never answered.

    ``requests``: the requests that arrived; ``forwarded``: those the fake answered."""

    def __init__(self, upstream: str, closing: Closing) -> None:
        url = urlsplit(upstream)
        assert url.hostname is not None
        assert url.port is not None
        self._upstream = (url.hostname, url.port)
        self._path = url.path
        self.closing = closing
        self.requests = 0
        self.forwarded = 0

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            yield f"http://127.0.0.1:{port}{self._path}"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")[:-2]
                length = next(
                    int(line.partition(b":")[2])
                    for line in lines
                    if _named(line, b"content-length")
                )
                body = await reader.readexactly(length)
                self.requests += 1
                if self.closing == "never_answers":
                    await asyncio.sleep(3600)
                if self.closing == "every" or answered:
                    return
                await self._forward(lines, body, writer)
                answered += 1
        except asyncio.IncompleteReadError:
            return
        finally:
            writer.close()

    async def _forward(self, lines: list[bytes], body: bytes, writer: asyncio.StreamWriter) -> None:
        """The fake's answer on a connection of its own (closed after it), without its
        ``Connection: close``: the client keeps its connection to the proxy."""
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        kept = [line for line in lines if not _named(line, b"connection")]
        upstream_writer.write(b"\r\n".join([*kept, b"Connection: close", b"", b""]) + body)
        head = await upstream_reader.readuntil(b"\r\n\r\n")
        self.forwarded += 1
        writer.write(
            b"\r\n".join(line for line in head.split(b"\r\n") if not _named(line, b"connection"))
        )
        while chunk := await upstream_reader.read(65536):
            writer.write(chunk)
        upstream_writer.close()


def _named(line: bytes, header: bytes) -> bool:
    return line.lower().startswith(header + b":")


async def moderated(clients: ModelClients, endpoint: ModelEndpoint) -> bool:
    """A request whose answer is not streamed."""
    result = await clients.client(endpoint).moderations.create(input="Hello")
    return result.results[0].flagged


POOLS = pytest.mark.parametrize("tenants", [False, True], ids=["operators_pool", "tenants_pool"])


@contextlib.asynccontextmanager
async def behind(
    proxy: ClosingProxy, fake: FakeOpenAI, tenants: bool, model_timeout: float = 10.0
) -> AsyncIterator[tuple[ModelClients, ModelEndpoint]]:
    """The runtime's clients, and the endpoint of the fake model behind ``proxy`` (a URL
    the tenant chose, or the operator's)."""
    clients = ModelClients(model_timeout, OutboundPolicy.parse(LOOPBACK))
    try:
        async with proxy.serving() as url:
            yield clients, ModelEndpoint(url, fake.api_key, chosen_by_tenant=tenants)
    finally:
        await clients.aclose()


@POOLS
async def test_a_connection_closed_as_it_is_reused_sends_the_request_again_on_a_new_one(
    fake_openai: FakeOpenAI, tenants: bool
) -> None:
    proxy = ClosingProxy(fake_openai.base_url, "reused")
    async with behind(proxy, fake_openai, tenants) as (clients, endpoint):
        assert await answer(clients, endpoint) == fake_openai.reply_text
        assert await answer(clients, endpoint) == fake_openai.reply_text  # reused, closed
        assert await moderated(clients, endpoint) is False  # reused, closed
    assert (proxy.requests, proxy.forwarded) == (5, 3)
    assert len(fake_openai.requests) == 3


@POOLS
async def test_a_model_that_closes_every_connection_gets_the_request_twice_and_no_more(
    fake_openai: FakeOpenAI, tenants: bool
) -> None:
    proxy = ClosingProxy(fake_openai.base_url, "every")
    async with behind(proxy, fake_openai, tenants) as (clients, endpoint):
        with pytest.raises(APIConnectionError):
            await answer(clients, endpoint)
    assert (proxy.requests, proxy.forwarded) == (2, 0)


@POOLS
async def test_a_model_that_does_not_answer_in_time_is_not_asked_again(
    fake_openai: FakeOpenAI, tenants: bool
) -> None:
    proxy = ClosingProxy(fake_openai.base_url, "never_answers")
    async with behind(proxy, fake_openai, tenants, model_timeout=0.5) as (clients, endpoint):
        with pytest.raises(APITimeoutError):
            await answer(clients, endpoint)
    assert proxy.requests == 1
