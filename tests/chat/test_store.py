"""The store's write behind the answer, driven directly (the protocol tests cover the rest)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime

import pytest
from chatkit.types import InferenceOptions, ThreadMetadata, UserMessageItem, UserMessageTextContent
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat.store import new_id
from kithost.models import ChatItem, ChatThread
from tests.chat.helpers import context_of, store_of
from tests.fakes.openai_server import FakeOpenAI


async def test_a_cancelled_wait_for_the_message_leaves_the_wait_to_the_next_caller(
    app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """A response cancelled while it waits for the user message's write (the visitor left)
    must not let the store's next unit of work (saving the partial answer) run before it."""
    context = await context_of(db, app, fake_openai)
    store = store_of(app)
    thread = ThreadMetadata(id=store.generate_thread_id(context), created_at=datetime.now())
    await store.save_thread(thread, context)
    await store.add_thread_item(thread.id, hello(thread.id), context)

    waiting = asyncio.create_task(store.settled())
    await asyncio.sleep(0)  # it has let the write start and waits for it
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await store.settled()

    stored = await db.scalar(select(func.count()).where(ChatItem.thread_id == thread.id))
    assert stored == 1


async def test_a_thread_started_in_the_dashboards_preview_is_marked_so(
    app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """Conversations leave the tenant's own tests out (``conversations.repository``)."""
    visiting = await context_of(db, app, fake_openai)
    previewing = dataclasses.replace(
        visiting, widget=dataclasses.replace(visiting.widget, preview=True)
    )
    for context in (visiting, previewing):
        store = store_of(app)
        thread = ThreadMetadata(id=store.generate_thread_id(context), created_at=datetime.now())
        await store.save_thread(thread, context)
        await store.add_thread_item(thread.id, hello(thread.id), context)
        await store.settled()
        stored = await db.scalar(select(ChatThread.preview).where(ChatThread.id == thread.id))
        assert stored is context.widget.preview


def hello(thread_id: str) -> UserMessageItem:
    return UserMessageItem(
        id=new_id("message"),
        thread_id=thread_id,
        created_at=datetime.now(),
        content=[UserMessageTextContent(text="Hello")],
        attachments=[],
        inference_options=InferenceOptions(),
    )
