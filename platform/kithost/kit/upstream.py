"""The OpenAI clients Kithost calls upstream with (hosted sessions and knowledge indexing:
:func:`openai_client`; the chat runtime: :class:`ModelClients`).

Two kinds, never mixed: the operator's endpoint (``KITHOST_OPENAI_BASE_URL``, else OpenAI's)
with the tenant's or the platform's key, and an endpoint a tenant chose (a widget's
``agent.base_url``) with the key the tenant gave for it, through :mod:`kithost.kit.outbound`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, get_args

import aiohttp
import httpx2
from openai import AsyncOpenAI, DefaultAioHttpClient, omit
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel, ValidationError

from kithost.kit.outbound import OutboundPolicy, outbound_client

_STREAM_EVENTS: dict[str, type[BaseModel]] = {
    literal: event
    for event in get_args(get_args(ResponseStreamEvent)[0])
    for literal in get_args(event.model_fields["type"].annotation)
}
"""Each Responses stream event's class by its ``type``."""
_STREAM_EVENT: Any = ResponseStreamEvent
"""The union a Responses stream is read as (a type alias: compared by identity)."""


def complete_stream_events() -> None:
    """Build the Responses stream event classes' validators now (openai leaves them to
    their first event: see :func:`kithost.chat.runtime.prepare_process`)."""
    for event in _STREAM_EVENTS.values():
        event.model_rebuild()


@dataclass(frozen=True)
class ModelEndpoint:
    """Where a model is called and with which key."""

    base_url: str | None
    """None: OpenAI's."""
    api_key: str = field(repr=False)
    chosen_by_tenant: bool
    """A URL the tenant typed: only the tenant's own key for it may go there."""


class _Client(AsyncOpenAI):
    """``AsyncOpenAI`` that sends a request again, at once, when the connection it went on
    was closed before the answer began, and reads each Responses stream event as the class
    its ``type`` names.

    A kept-alive connection the server closes as idle just as the pool hands it out (both
    sides time idle connections out after ~5 s: httpx2's and aiohttp's pools, uvicorn,
    Node) fails the request that took it: without a second try, the visitor's answer was an
    error (bench_chat's held streams lost one in 133, then one in 233, this way). The client makes
    no retries (``max_retries=0``: a visitor is waiting, and a failed model is a failed
    answer), so this one is its own: once, with no delay, only for a connection that ended
    before the response's head (:func:`_closed_before_answering`); asking a model again
    changes nothing but the tokens it bills, which is why openai retries such errors itself
    by default (twice, after a back-off).

    The client checks every event against the union of all 59 (a hash of the union and up
    to 59 tries per event): that was the largest cost of a streamed answer in Kithost's
    process, ~15 % of its CPU (py-spy, bench_chat's held streams). The event is the same
    object (``tests/kit/test_upstream.py``); one that does not validate takes the client's
    own (lenient) way. The hook is the client's private ``_process_response_data``, which
    every response and stream event passes through: check it when upgrading ``openai``.
    """

    async def _send_request(
        self, request: httpx2.Request, *, stream: bool, **kwargs: Any
    ) -> httpx2.Response:
        try:  # to the response's head (httpx2's stream=False reads the body on from there)
            response = await super()._send_request(request, stream=True, **kwargs)
        except httpx2.TransportError as exc:
            if not _closed_before_answering(exc):
                raise
            response = await super()._send_request(request, stream=True, **kwargs)
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response

    def _process_response_data(
        self, *, data: object, cast_to: type[Any], response: httpx2.Response
    ) -> Any:
        if cast_to is _STREAM_EVENT and isinstance(data, dict):
            event = _STREAM_EVENTS.get(data.get("type"))  # type: ignore[arg-type]
            if event is not None:
                try:
                    return event.model_validate(data)
                except ValidationError:
                    pass
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)


def _closed_before_answering(error: httpx2.TransportError) -> bool:
    """Whether ``error`` is a connection that ended before the response's head came: the
    server closed it (or reset it) while the request was sent or awaited its answer. Not a
    connection that could not be made, not a timeout, not an address refused."""
    if isinstance(error, httpx2.RemoteProtocolError | httpx2.WriteError | httpx2.ReadError):
        return True  # httpx2's pool
    cause = error.__cause__  # openai's aiohttp transport maps aiohttp's errors loosely
    return isinstance(
        cause,
        aiohttp.ClientOSError
        | aiohttp.ServerDisconnectedError
        | aiohttp.ClientConnectionResetError,
    ) and not isinstance(cause, aiohttp.ClientConnectorError)


@lru_cache(maxsize=256)
def openai_client(api_key: str, base_url: str | None, timeout: float) -> AsyncOpenAI:
    """One client (and connection pool) per key and endpoint, reused across requests.

    No retries but :class:`_Client`'s one: a visitor is waiting, and every caller maps
    failures to a problem.
    """
    return _Client(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


class ModelClients:
    """The chat runtime's model clients: a part of the app, closed with it (its lifespan).

    Two connection pools, shared by every key: the operator's endpoint on aiohttp (openai's
    ``DefaultAioHttpClient``: its C parser reads a streamed answer for less of the process's
    CPU per text delta than httpx2; measured in bench/README), and the endpoints tenants
    chose on :mod:`kithost.kit.outbound`'s checked httpx2 transport, which sends the
    tenant's key and nothing the process's environment would add (``OPENAI_CUSTOM_HEADERS``
    may carry an ``Authorization``; ``OPENAI_ORG_ID``/``OPENAI_PROJECT_ID`` name the
    operator's account). On top, a client per key and endpoint, kept (building one costs
    ~0.08 ms): it holds nothing but its pool's reference. No retries but :class:`_Client`'s
    one: a visitor is waiting, and every caller maps failures to a problem.

    aiohttp's pool belongs to the event loop it first ran in: so one per app, unlike
    :func:`openai_client`'s, which Celery's tasks (a loop each) use.
    """

    def __init__(self, timeout: float, policy: OutboundPolicy) -> None:
        self._timeout = timeout
        self._operator = DefaultAioHttpClient(timeout=timeout, verify=_tls())
        self._tenants = outbound_client(policy, timeout=timeout)
        self.client = lru_cache(maxsize=256)(self._client)
        """The client for an endpoint (cached)."""

    def _client(self, endpoint: ModelEndpoint) -> AsyncOpenAI:
        http: httpx2.AsyncClient = self._operator
        headers: dict[str, Any] | None = None
        if endpoint.chosen_by_tenant and endpoint.base_url is not None:
            http = self._tenants
            headers = {
                "Authorization": f"Bearer {endpoint.api_key}",
                "OpenAI-Organization": omit,
                "OpenAI-Project": omit,
            }
        return _Client(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            timeout=self._timeout,
            max_retries=0,
            http_client=http,
            default_headers=headers,
        )

    async def aclose(self) -> None:
        self.client.cache_clear()
        await self._operator.aclose()
        await self._tenants.aclose()


@cache
def _tls() -> ssl.SSLContext:
    """The operator pool's TLS settings (httpx2's defaults: its CA bundle, or
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built once a process: loading the CA bundle takes
    ~20 ms, which every app would pay at start-up (each test builds one)."""
    return httpx2.create_ssl_context()
