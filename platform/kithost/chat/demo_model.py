"""The demo tenant's model when no OpenAI key is configured: a short, honest answer that
says so and where to set one, streamed like a model's, so ``make run``'s demo chat visibly
works offline. Only the demo tenant (``kithost.demo``), never in production, and never
when any key would let the real model answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime

from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
)

from kithost.chat.context import ChatContext
from kithost.chat.store import new_id
from kithost.db import Sessionmaker, session_scope
from kithost.demo import DEMO_SLUG
from kithost.models import Tenant
from kithost.settings import Environment, Settings

REPLY = (
    "This is Kithost's demo model: no OpenAI API key is set, so I can only say this. "
    "Set KITHOST_OPENAI_API_KEY before `make run` (or give the demo tenant its own key with "
    "PUT /api/v1/tenants/demo/openai-key) and this chat answers with the real model."
)


async def serves(sessionmaker: Sessionmaker, settings: Settings, context: ChatContext) -> bool:
    """Whether the demo model answers for the context's widget (which has no key)."""
    if settings.env is Environment.production:
        return False
    async with session_scope(sessionmaker) as session:
        tenant = await session.get(Tenant, context.tenant_id)
    return tenant is not None and tenant.slug == DEMO_SLUG


async def answer(thread: ThreadMetadata) -> AsyncIterator[ThreadStreamEvent]:
    """:data:`REPLY` as an assistant message, word by word."""
    item = AssistantMessageItem(
        id=new_id("message"), thread_id=thread.id, created_at=datetime.now(), content=[]
    )
    yield ThreadItemAddedEvent(item=item)
    empty = AssistantMessageContent(text="")
    yield ThreadItemUpdatedEvent(
        item_id=item.id, update=AssistantMessageContentPartAdded(content_index=0, content=empty)
    )
    for word in re.findall(r"\S+\s*", REPLY):
        update = AssistantMessageContentPartTextDelta(content_index=0, delta=word)
        yield ThreadItemUpdatedEvent(item_id=item.id, update=update)
    content = AssistantMessageContent(text=REPLY)
    yield ThreadItemUpdatedEvent(
        item_id=item.id, update=AssistantMessageContentPartDone(content_index=0, content=content)
    )
    yield ThreadItemDoneEvent(item=item.model_copy(update={"content": [content]}))
