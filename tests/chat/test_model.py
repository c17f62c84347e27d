"""The widget's model hands its first text delta on before it reads on (``chat.model``):
a stream that arrives in one piece must not be parsed to its end before the first token
can leave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import ModelSettings, ModelTracing
from openai import AsyncOpenAI

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
