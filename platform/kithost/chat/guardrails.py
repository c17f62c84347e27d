"""The agent's guardrails (``widgets.config.Guardrails``): checks of what the visitor gives
the model before it is called. The first that trips names itself; the server then answers
with the widget's refusal message instead of the model.

They read everything of the visitor's that the model would: a message's text (its tags as
``@name``), the text it quotes and its tags' data (:func:`message_texts`, as
``agent.Converter`` writes them), a widget action's type and payload (:func:`action_texts`,
which ``ChatServer.action`` hands the model as a hidden note), and what the page answers a
client tool call with (:func:`output_texts`, the call's output). A refused topic is matched
in text folded alike (:func:`fold`): compatibility forms as their plain letters (NFKC:
fullwidth letters are ASCII ones), invisible characters left out (``kit.visible``: a zero-width
space inside a word), case ignored."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from chatkit.types import UserMessageItem, UserMessageTagContent, UserMessageTextContent
from openai import AsyncOpenAI

from kithost.kit.visible import without_invisible
from kithost.widgets.config import Guardrails

Tripped = Literal["max_input_length", "refused_topic", "moderation"]
MODERATION_MODEL = "omni-moderation-latest"


def tag_text(tag: UserMessageTagContent) -> str:
    """What the model reads of a tag beside the message (``agent.Converter``)."""
    return f"@{tag.text}: {json.dumps(tag.data, ensure_ascii=False)}"


def message_texts(message: UserMessageItem) -> list[str]:
    """Everything of ``message`` the model reads, in the pieces it reads: the text (tags as
    ``@name``), the text it quotes, each tag's text and data once."""
    texts = [
        "".join(
            p.text if isinstance(p, UserMessageTextContent) else f"@{p.text}"
            for p in message.content
        )
    ]
    if message.quoted_text:
        texts.append(message.quoted_text)
    tags = {p.text: p for p in message.content if isinstance(p, UserMessageTagContent)}
    texts.extend(tag_text(tag) for tag in tags.values())
    return texts


def action_texts(action_type: str, payload: Any) -> list[str]:
    """What the model reads of a widget action the visitor used: its type and payload (as
    JSON, its strings without invisible characters: see :func:`output_texts`)."""
    return [action_type, json.dumps(_visible(payload), ensure_ascii=False, default=str)]


def output_texts(result: Any) -> list[str]:
    """What the model reads of a client tool's output (``client_tools``): the result as
    JSON, invisible characters left out of its strings first (JSON would spell a control
    character as a visible escape, ``\\u0001``, which :func:`fold` would keep)."""
    return [json.dumps(_visible(result), ensure_ascii=False)]


def _visible(value: Any) -> Any:
    if isinstance(value, str):
        return without_invisible(value)
    if isinstance(value, dict):
        return {_visible(key): _visible(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [_visible(entry) for entry in value]
    return value


def fold(text: str) -> str:
    """``text`` as refused topics are matched in it (see above)."""
    return unicodedata.normalize("NFKC", without_invisible(text)).casefold()


async def check(
    guardrails: Guardrails,
    texts: Sequence[str],
    moderation_client: Callable[[], Awaitable[AsyncOpenAI | None]],
) -> Tripped | None:
    """Which guardrail ``texts`` (what the visitor gives the model) trip, if any: their
    length together, a refused topic in any of them, then OpenAI's moderation (only when
    asked for, with the client ``moderation_client`` gives; None: no OpenAI key, not
    checked)."""
    text = "\n".join(t for t in texts if t)
    limit = guardrails.max_input_length
    if limit is not None and len(text) > limit:
        return "max_input_length"
    topics = [folded for topic in guardrails.refused_topics if (folded := fold(topic))]
    if any(topic in fold(t) for t in texts for topic in topics):
        return "refused_topic"
    if guardrails.moderation and text.strip():
        client = await moderation_client()
        if client is not None:
            result = await client.moderations.create(model=MODERATION_MODEL, input=text)
            if any(r.flagged for r in result.results):
                return "moderation"
    return None
