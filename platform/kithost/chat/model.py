"""The widget's model as the Agents SDK calls it, its first text delta handed on at once.

The runner reads the model's stream in a task of its own and queues its events; they reach
the response's task through chatkit's merge of the run's events with its own (a task and a
queue more). A stream that arrives in one piece (a fast or nearby model, a short answer)
would be read and parsed to its end before the response could forward anything, its first
token included. After the first text delta these models let the event loop run the
response's side first (:data:`HOPS` turns), so the first token leaves while the rest is
still being read. Only after the first: each turn passes through the whole chain of awaits
of the run, and after every delta the turns were a third of a streamed delta's CPU in
Kithost's process (bench_chat's held streams: 352 → 233 µs a delta with this and
``kit.upstream``'s event reading); a model streaming at its pace leaves the loop between
deltas anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from agents import Model, OpenAIChatCompletionsModel, OpenAIResponsesModel
from openai import AsyncOpenAI

from kithost.widgets.config import Agent as AgentConfig
from kithost.widgets.config import ModelApi

HOPS = 4
"""Event-loop turns from the runner's task to the response's send (measured: bench_chat)."""
TEXT_DELTA = "response.output_text.delta"
"""Both APIs' text deltas (the SDK turns Chat Completions chunks into Responses events)."""
PLAIN = ("input", "tools")
"""The Responses request's lists sent without the client's transform (see ResponsesModel)."""


class _HandsOn:
    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        waiting = True
        async for event in super().stream_response(*args, **kwargs):  # type: ignore[misc]
            yield event
            if waiting and event.type == TEXT_DELTA:
                waiting = False
                for _ in range(HOPS):
                    await asyncio.sleep(0)


class ResponsesModel(_HandsOn, OpenAIResponsesModel):
    def _build_response_create_kwargs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The SDK's request, its input items and tools sent as they are (``extra_body``):
        the SDK has made them JSON already, and the client's transform (checking each item
        against every type it may be, none of which renames or formats a field) costs before
        the first token: 0.4 ms an input item, 0.24 ms a tool (measured)."""
        created: dict[str, Any] = super()._build_response_create_kwargs(*args, **kwargs)
        plain = {key: created.pop(key) for key in PLAIN if isinstance(created[key], list)}
        created["extra_body"] = {**plain, **(created["extra_body"] or {})}
        return created


class ChatCompletionsModel(_HandsOn, OpenAIChatCompletionsModel):
    pass


def model(config: AgentConfig, client: AsyncOpenAI) -> Model:
    if config.model_api is ModelApi.chat_completions:
        return ChatCompletionsModel(model=config.model, openai_client=client)
    return ResponsesModel(model=config.model, openai_client=client)
