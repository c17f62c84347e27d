"""An answer with one tool round trip: Kithost's added time to the first streamed token.

The real ``kithost serve`` (one process, ``kithost demo``'s self-hosted widget, its agent
given an ``http`` tool through the API) answers with the fake OpenAI server of the tests
(``tests/fakes/openai_server.py``, in this process, on loopback) as its model: the first
model request answers with a call of the tool, Kithost sends the signed call to the tool
endpoint (``tests/fakes/tool_endpoint.py``, on loopback), hands its JSON back to the model,
and the second model request streams the text.

The baseline is the same round trip done by this client alone: the model request answering
with the call, the POST to the tool endpoint, the model request with the tool's output, to
its first text delta. Samples alternate between the two (the box's load drifts), 40 of each
after 5 of warm-up, on SQLite (the embedded default) and on PostgreSQL (a scratch database on
127.0.0.1:5432, dropped afterwards). The figure is the difference of the medians.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import httpx2
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.tool_endpoint import ToolEndpoint

from bench._common import emit
from bench.bench_chat import Chat, on_both_databases, timed_stream

SAMPLES, WARM_UP = 40, 5
TOOL = "lookup_order"
ARGUMENTS = {"order": "A-1"}
PARAMETERS = {"type": "object", "properties": {"order": {"type": "string"}}}


async def configure(
    client: httpx2.AsyncClient, base: str, seed: dict[str, Any], tool_url: str
) -> str:
    """Give the demo widget's agent the ``http`` tool and publish it (as the owner, through
    the API); the widget's new tool secret."""
    api = f"{base}/api/v1"
    signed_in = await client.post(
        f"{api}/auth/login",
        json={"email": seed["owner_email"], "password": seed["owner_password"]},
    )
    signed_in.raise_for_status()
    headers = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
    widgets = await client.get(f"{api}/tenants/{seed['tenant']}/widgets", headers=headers)
    widgets.raise_for_status()
    [widget] = widgets.json()
    url = f"{api}/tenants/{seed['tenant']}/widgets/{widget['id']}"
    tool = {
        "type": "http",
        "id": "orders",
        "name": TOOL,
        "description": "The status of an order.",
        "parameters": PARAMETERS,
        "url": tool_url,
    }
    config = {**widget["config"], "agent": {**widget["config"]["agent"], "tools": [tool]}}
    put = await client.put(
        f"{url}/config", json=config, headers={**headers, "If-Match": f'"{widget["revision"]}"'}
    )
    put.raise_for_status()
    published = await client.post(
        f"{url}/publish", json={}, headers={**headers, "If-Match": put.headers["etag"]}
    )
    published.raise_for_status()
    secret: str = put.json()["new_tool_secret"]
    return secret


async def model_alone(client: httpx2.AsyncClient, fake: FakeOpenAI, tool_url: str) -> float:
    """Seconds to the first text delta of the round trip done directly."""
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    function = {"type": "function", "name": TOOL, "parameters": PARAMETERS, "strict": False}
    fake.call_function(TOOL, ARGUMENTS)
    started = time.perf_counter()
    async with client.stream(
        "POST",
        f"{fake.base_url}/responses",
        json={"model": "gpt-4.1-mini", "input": "Hello", "tools": [function], "stream": True},
        headers=auth,
    ) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    done = json.loads(body.split(b"response.completed\ndata: ")[1].split(b"\n")[0])
    [call] = done["response"]["output"]
    answer = await client.post(tool_url, json={"tool": TOOL, "arguments": ARGUMENTS})
    answer.raise_for_status()
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": answer.text}
    second = time.perf_counter()
    timing = await timed_stream(
        client,
        f"{fake.base_url}/responses",
        json={"model": "gpt-4.1-mini", "input": [call, output], "stream": True},
        headers=auth,
    )
    if not timing.ok:
        raise SystemExit("the model alone failed")
    return second - started + timing.first_token


async def measure(base: str, seed: dict[str, Any], origin: str, fake: FakeOpenAI, db: str) -> None:
    """Emit the figures for one ``kithost serve``; ``db`` names its database in them."""
    endpoint = ToolEndpoint("known once configured")
    async with httpx2.AsyncClient(timeout=60) as client, endpoint:
        endpoint.secret = await configure(client, base, seed, endpoint.url)
        chat = Chat(client, base, seed["widget_public_key"], origin)
        token = await chat.token("anon_" + "t" * 24)
        direct: list[float] = []
        through: list[float] = []
        for n in range(WARM_UP + SAMPLES):
            alone = await model_alone(client, fake, endpoint.url)
            fake.call_function(TOOL, ARGUMENTS)
            timing = await chat.create_thread(token)
            if not timing.ok:
                raise SystemExit("an answer through Kithost failed")
            if n >= WARM_UP:
                direct.append(alone)
                through.append(timing.first_token)
    signed = sum(r.signed for r in endpoint.received)
    if signed != WARM_UP + SAMPLES:  # Kithost's calls (the baseline's are not signed)
        raise SystemExit(f"{signed} signed tool calls, not {WARM_UP + SAMPLES}")
    model_ms = statistics.median(direct) * 1000
    kithost_ms = statistics.median(through) * 1000
    note = f"{SAMPLES} requests, alternating with the baseline"
    emit("tool", f"{db}: model + tool alone: first token, median", model_ms, "ms", note)
    emit("tool", f"{db}: through Kithost: first token, median", kithost_ms, "ms", note)
    emit(
        "tool",
        f"{db}: Kithost's added time to first token, one tool round trip, median",
        kithost_ms - model_ms,
        "ms",
        "through Kithost minus the same round trip done directly",
    )


if __name__ == "__main__":
    on_both_databases(measure)
