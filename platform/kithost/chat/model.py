"""The widget's model as the Agents SDK calls it, its first text delta handed on at once.

The runner reads the model's stream in a task of its own and queues its events; they reach
the response's task through chatkit's merge of the run's events with its own (a task and a
queue more per event). A stream that arrives in one piece (a fast or nearby model, a short
answer) would be read and parsed to its end before the response could forward anything, its
first token included. So after its first text delta a model waits until the response has
sent it (``first_token_out``, set by ``ChatServer``), then reads on. Only the first: a
model streaming at its pace leaves the loop between deltas anyway, and handing over after
every delta cost a third of a streamed delta's CPU (bench_chat's held streams).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from agents import Model, OpenAIChatCompletionsModel, OpenAIResponsesModel
from openai import AsyncOpenAI

from kithost.widgets.config import Agent as AgentConfig
from kithost.widgets.config import ModelApi

FIRST_TOKEN_WAIT_SECONDS = 1.0
"""How long a model waits for its first token to be sent at most (it always is, unless the
response is ending: then the run is cancelled)."""
TEXT_DELTA = "response.output_text.delta"
"""Both APIs' text deltas (the SDK turns Chat Completions chunks into Responses events)."""
PLAIN = ("input", "tools")
"""The Responses request's lists sent without the client's transform (see ResponsesModel)."""


class _HandsOn:
    first_token_out: asyncio.Event

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        waiting = not self.first_token_out.is_set()
        async for event in super().stream_response(*args, **kwargs):  # type: ignore[misc]
            yield event
            if waiting and event.type == TEXT_DELTA:
                waiting = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.first_token_out.wait(), FIRST_TOKEN_WAIT_SECONDS)


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


def model(config: AgentConfig, client: AsyncOpenAI, first_token_out: asyncio.Event) -> Model:
    """The agent's model; ``first_token_out``: set once the response has sent its first
    text."""
    kind = ChatCompletionsModel if config.model_api is ModelApi.chat_completions else ResponsesModel
    built = kind(model=config.model, openai_client=client)
    built.first_token_out = first_token_out
    return built
