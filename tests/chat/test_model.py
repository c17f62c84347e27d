"""The widget's model (``chat.model``) hands its first text delta on before it reads on (a
stream that arrives in one piece must not be parsed to its end before the first token can
leave), and the others at a pace, joined, nothing lost or moved."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import pytest
from agents import ModelSettings, ModelTracing
from openai import AsyncOpenAI
from openai._utils._transform import PropertyInfo
from openai.types.responses import ResponseTextDeltaEvent, ResponseTextDoneEvent
from openai.types.responses.response_create_params import ResponseCreateParamsStreaming
from typing_extensions import is_typeddict

from kithost.chat import model
from kithost.widgets.config import Agent as AgentConfig
from tests.fakes.openai_server import FakeOpenAI

TEXT_DELTA = "response.output_text.delta"


def streamed(fake: FakeOpenAI, api: str, first_token_out: asyncio.Event) -> AsyncIterator[Any]:
    config = AgentConfig.model_validate({"base_url": fake.base_url, "model_api": api})
    client = AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url, max_retries=0)
    return model.model(config, client, first_token_out).stream_response(
        system_instructions=None,
        input="Hello",
        model_settings=ModelSettings(),
        tools=[],
        output_schema=None,
        handoffs=[],
        tracing=ModelTracing.DISABLED,
        previous_response_id=None,
        conversation_id=None,
        prompt=None,
    )


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_after_its_first_text_a_model_reads_on_once_that_text_is_out(
    fake_openai: FakeOpenAI, api: str
) -> None:
    fake_openai.reply_text = "one two three four"  # the whole stream at once
    first_token_out = asyncio.Event()
    events = streamed(fake_openai, api, first_token_out)
    async for event in events:
        if event.type == TEXT_DELTA:
            break
    following = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.1)
    assert not following.done()  # the rest waits for the first token

    first_token_out.set()
    rest = [await following] + [event async for event in events]
    deltas = [event.delta for event in rest if event.type == TEXT_DELTA]
    assert "".join(deltas).strip() == "two three four"


def renamed_or_formatted(declared: Any, path: str, seen: set[Any]) -> list[str]:
    """Where a field under the type ``declared`` is sent renamed or formatted."""
    if get_origin(declared) is Annotated:
        inner, *metadata = get_args(declared)
        found = [
            path
            for meta in metadata
            if isinstance(meta, PropertyInfo) and (meta.alias or meta.format)
        ]
        return found + renamed_or_formatted(inner, path, seen)
    if is_typeddict(declared):
        if declared in seen:
            return []
        seen.add(declared)
        fields = get_type_hints(declared, include_extras=True).items()
        return [
            at
            for name, field in fields
            for at in renamed_or_formatted(field, f"{path}.{name}", seen)
        ]
    return [at for arg in get_args(declared) for at in renamed_or_formatted(arg, path, seen)]


def shape(events: list[Any]) -> list[str]:
    """The events' types, each run of text deltas as one."""
    return [kind for kind, _ in itertools.groupby(event.type for event in events)]


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_text_deltas_after_the_first_pass_on_at_the_pace_joined(
    fake_openai: FakeOpenAI, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.reply_text = " ".join(f"w{n}" for n in range(50))
    fake_openai.event_interval_seconds = 0.01  # a word every 10 ms: ten to a pace
    first_token_out = asyncio.Event()
    first_token_out.set()
    paced: list[tuple[float, Any]] = []
    async for event in streamed(fake_openai, api, first_token_out):
        paced.append((time.monotonic(), event))
    pace = model.TEXT_PACE_SECONDS
    monkeypatch.setattr(model, "TEXT_PACE_SECONDS", 0.0)
    each = [event async for event in streamed(fake_openai, api, first_token_out)]

    events = [event for _, event in paced]
    texts = [event.delta for event in events if event.type == TEXT_DELTA]
    one_by_one = [event.delta for event in each if event.type == TEXT_DELTA]
    assert len(one_by_one) == 50
    assert "".join(texts) == "".join(one_by_one)
    assert texts[0] == one_by_one[0]  # the first passes on alone
    assert 1 < len(texts) < 50
    assert shape(events) == shape(each)  # every other event, in its place
    passed_at = [at for at, event in paced if event.type == TEXT_DELTA]
    # Apart by the pace at least, but the last: the end of the text lets it go.
    gaps = [b - a for a, b in itertools.pairwise(passed_at[:-1])]
    assert all(gap >= pace * 0.9 for gap in gaps)


def delta(text: str, content_index: int = 0, logprob: float | None = None) -> Any:
    logprobs = [] if logprob is None else [{"token": text, "logprob": logprob}]
    return ResponseTextDeltaEvent.model_validate(
        {
            "type": TEXT_DELTA,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": content_index,
            "delta": text,
            "logprobs": logprobs,
            "sequence_number": 0,
        }
    )


def test_held_text_goes_before_the_text_of_another_part_and_any_other_event() -> None:
    paced = model._Paced()
    [first] = paced.passing(delta("a", logprob=-1.0))
    assert first.delta == "a"
    assert paced.passing(delta("b", logprob=-2.0)) == []
    assert paced.passing(delta("c", logprob=-3.0)) == []
    [joined] = paced.passing(delta("x", content_index=1))  # another content part
    assert (joined.delta, [p.logprob for p in joined.logprobs]) == ("bc", [-2.0, -3.0])
    done = ResponseTextDoneEvent.model_validate(
        {
            "type": "response.output_text.done",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 1,
            "text": "x",
            "logprobs": [],
            "sequence_number": 9,
        }
    )
    held, after = paced.passing(done)
    assert (held.delta, held.content_index, after) == ("x", 1, done)
    assert not paced.held


def test_deltas_without_log_probabilities_join_too() -> None:
    """A server may leave ``logprobs`` out: the client then reads its events leniently."""
    paced = model._Paced()
    for n, text in enumerate(["a", "b", "c"]):
        paced.passing(delta(text).model_copy(update={"logprobs": None, "sequence_number": n}))
    joined = paced.release()
    assert (joined.delta, joined.sequence_number) == ("bc", 2)
    assert joined.logprobs is None


def test_the_responses_request_is_sent_as_json_because_no_field_of_it_is_transformed() -> None:
    """``ResponsesModel`` sends the request's JSON past the client's transform: that holds
    while no type of the request renames or formats a field."""
    seen: set[Any] = set()
    assert renamed_or_formatted(ResponseCreateParamsStreaming, "request", seen) == []
    assert len(seen) > 100  # the walk reached the input items' and tools' types
