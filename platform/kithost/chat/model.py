"""The widget's model as the Agents SDK calls it: its first text delta handed on at once,
the others at a steady pace.

The runner reads the model's stream in a task of its own and queues its events; they reach
the response's task through chatkit's merge of the run's events with its own (a task and a
queue more per event). A stream that arrives in one piece (a fast or nearby model, a short
answer) would be read and parsed to its end before the response could forward anything, its
first token included. So after its first text delta a model waits until the response has
sent it (``first_token_out``, set by ``ChatServer``), then reads on. Only the first: a
model streaming at its pace leaves the loop between deltas anyway, and a hand-over is a pass
through the run's whole chain of awaits (four after every delta and ``kit.upstream``'s
event reading together cost a third of a streamed delta's CPU: 352 → 233 µs in bench_chat's
held streams).

After the first, text deltas pass on at most every ``TEXT_PACE_SECONDS`` (:class:`_Paced`):
one that comes sooner is held and the next ones' text joins it, until the pace allows or
another event comes. Everything after the model's stream (the runner, chatkit, the SSE
event written) then runs per pace, not per token: at 20 tokens a second, half as often. A
held token waits at most until the model's next event. Measured in bench_chat's held
streams (SQLite, 2026-12-06 17:50 UTC): 159 → 126 µs of server CPU a streamed token, 250 →
300 streams held; a pace of 0.25 s held 350, while the visitor would see the text move in
jumps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from agents import Model, OpenAIChatCompletionsModel, OpenAIResponsesModel
from openai import AsyncOpenAI
from openai.types.responses import ResponseTextDeltaEvent
from pydantic import BaseModel

from kithost.kit.surrogates import without_lone_surrogates
from kithost.widgets.config import Agent as AgentConfig
from kithost.widgets.config import ModelApi

FIRST_TOKEN_WAIT_SECONDS = 1.0
"""How long a model waits for its first token to be sent at most (it always is, unless the
response is ending: then the run is cancelled)."""
TEXT_PACE_SECONDS = 0.1
"""Text deltas pass on at most this often, the first at once (see the module's docstring)."""
TEXT_DELTA = "response.output_text.delta"
"""Both APIs' text deltas (the SDK turns Chat Completions chunks into Responses events)."""
PLAIN_LISTS = ("input", "tools", "include")
"""The Responses request's lists the SDK builds as JSON (see ResponsesModel)."""


class _HandsOn:
    first_token_out: asyncio.Event

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        waiting = not self.first_token_out.is_set()
        paced = _Paced()
        async for event in super().stream_response(*args, **kwargs):  # type: ignore[misc]
            for out in paced.passing(_mended(event)):
                yield out
                if waiting and out.type == TEXT_DELTA:
                    waiting = False
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self.first_token_out.wait(), FIRST_TOKEN_WAIT_SECONDS
                        )
        if paced.held:
            yield paced.release()


class _Paced:
    """A stream's text deltas passed on at most every ``TEXT_PACE_SECONDS`` (the first at
    once): one that comes sooner is held, and those of the same content part after it join
    it, until the pace allows or another event comes."""

    def __init__(self) -> None:
        self.held: list[ResponseTextDeltaEvent] = []
        self._passed_at = -TEXT_PACE_SECONDS

    def passing(self, event: Any) -> list[Any]:
        """What passes on, in order, now that ``event`` came."""
        if event.type != TEXT_DELTA:
            return [self.release(), event] if self.held else [event]
        out = [self.release()] if self.held and _part(self.held[0]) != _part(event) else []
        self.held.append(event)
        now = time.monotonic()
        if now - self._passed_at >= TEXT_PACE_SECONDS:
            self._passed_at = now
            out.append(self.release())
        return out

    def release(self) -> ResponseTextDeltaEvent:
        """The held deltas as one (the first, with the others' text and log probabilities)."""
        first, *others = self.held
        self.held = []
        if others:
            first.delta += "".join(other.delta for other in others)
            first.sequence_number = others[-1].sequence_number
            # None from a server that leaves them out (the client reads its events leniently).
            logprobs = [p for e in (first, *others) for p in e.logprobs or ()]
            if logprobs:
                first.logprobs = logprobs
        return first


def _mended(event: Any) -> Any:
    """``event`` with each lone surrogate in its text as U+FFFD (``kit.surrogates``): any
    OpenAI-compatible server may stream the escape ``"\\ud800"``, which the client reads
    and nothing after can write (the answer's next event, its row, the next request). A
    delta's text is all a delta holds (checked for nothing more: one per token); the other
    events, a few an answer, are searched whole, as their texts repeat the deltas'."""
    delta = getattr(event, "delta", None)
    if isinstance(delta, str):
        mended = without_lone_surrogates(delta)
        if mended is not delta:
            event.delta = mended
    else:
        _mend_all(event)
    return event


def _mend_all(value: Any) -> Any:
    """``value`` (a model, a list, a dict or text), its text mended in place."""
    if isinstance(value, str):
        return without_lone_surrogates(value)
    if isinstance(value, BaseModel):
        fields = value.__dict__
    elif isinstance(value, dict):
        fields = value
    elif isinstance(value, list):
        value[:] = [_mend_all(entry) for entry in value]
        return value
    else:
        return value
    for key, entry in fields.items():
        fields[key] = _mend_all(entry)
    return value


def _part(delta: ResponseTextDeltaEvent) -> tuple[str, int, int]:
    """The content part a text delta adds to."""
    return delta.item_id, delta.output_index, delta.content_index


class ResponsesModel(_HandsOn, OpenAIResponsesModel):
    def _build_response_create_kwargs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The SDK's request, its input items, tools, includes and plain values (the model,
        the instructions, the temperature…) sent as they are (``extra_body``).

        The client's transform renames and formats fields by their declared types; no type
        of the Responses request declares either (``tests/chat/test_model.py`` checks them
        all), so for JSON it changes nothing, and it costs before the first token: 0.4 ms an
        input item, 0.24 ms a tool, 0.1 ms for the rest (measured). What is not plain JSON
        (the SDK's ``Reasoning`` object, say) still goes through it."""
        created: dict[str, Any] = super()._build_response_create_kwargs(*args, **kwargs)
        plain = {key: created.pop(key) for key in [k for k, v in created.items() if _plain(k, v)]}
        created["extra_body"] = {**plain, **(created["extra_body"] or {})}
        return created


def _plain(key: str, value: object) -> bool:
    """Whether the request's ``key`` is JSON as the SDK built it (``stream`` is the
    client's: it picks the kind of response)."""
    if key in PLAIN_LISTS:
        return isinstance(value, list)
    return key != "stream" and isinstance(value, str | int | float)


class ChatCompletionsModel(_HandsOn, OpenAIChatCompletionsModel):
    pass


def model(config: AgentConfig, client: AsyncOpenAI, first_token_out: asyncio.Event) -> Model:
    """The agent's model; ``first_token_out``: set once the response has sent its first
    text."""
    kind = ChatCompletionsModel if config.model_api is ModelApi.chat_completions else ResponsesModel
    built = kind(model=config.model, openai_client=client)
    built.first_token_out = first_token_out
    return built
