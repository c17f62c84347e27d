"""The widget's model hands its first text delta on before it reads on (``chat.model``):
a stream that arrives in one piece must not be parsed to its end before the first token
can leave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import pytest
from agents import ModelSettings, ModelTracing
from openai import AsyncOpenAI
from openai._utils._transform import PropertyInfo
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


def test_the_responses_request_is_sent_as_json_because_no_field_of_it_is_transformed() -> None:
    """``ResponsesModel`` sends the request's JSON past the client's transform: that holds
    while no type of the request renames or formats a field."""
    seen: set[Any] = set()
    assert renamed_or_formatted(ResponseCreateParamsStreaming, "request", seen) == []
    assert len(seen) > 100  # the walk reached the input items' and tools' types
