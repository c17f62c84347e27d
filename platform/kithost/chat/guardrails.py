"""The agent's guardrails (``widgets.config.Guardrails``): checks of the visitor's message
before the model is called. The first that trips names itself; the server then answers with
the widget's refusal message instead of the model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from chatkit.types import UserMessageItem, UserMessageTextContent
from openai import AsyncOpenAI

from kithost.widgets.config import Guardrails

Tripped = Literal["max_input_length", "refused_topic", "moderation"]
MODERATION_MODEL = "omni-moderation-latest"


def text_of(message: UserMessageItem) -> str:
    return "\n".join(p.text for p in message.content if isinstance(p, UserMessageTextContent))


async def check(
    guardrails: Guardrails,
    message: UserMessageItem,
    moderation_client: Callable[[], Awaitable[AsyncOpenAI | None]],
) -> Tripped | None:
    """Which guardrail ``message`` trips, if any: its length, a refused topic (a
    case-insensitive match of the text), then OpenAI's moderation (only when asked for,
    with the client ``moderation_client`` gives; None: no OpenAI key, not checked)."""
    text = text_of(message)
    limit = guardrails.max_input_length
    if limit is not None and len(text) > limit:
        return "max_input_length"
    folded = text.casefold()
    if any(topic.casefold() in folded for topic in guardrails.refused_topics):
        return "refused_topic"
    if guardrails.moderation and text.strip():
        client = await moderation_client()
        if client is not None:
            result = await client.moderations.create(model=MODERATION_MODEL, input=text)
            if any(r.flagged for r in result.results):
                return "moderation"
    return None
