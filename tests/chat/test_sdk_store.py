"""The ``openai-chatkit`` SDK's own store tests, run against Kithost's ``SqlStore``.

Ported from openai/chatkit-python at tag v1.6.5 (the version requirements.lock pins),
``tests/test_store.py``: Copyright 2025 OpenAI, licensed under the Apache License 2.0 (a
copy, with upstream's NOTICE: tests/chat/LICENSE-openai-chatkit.txt). Changed from
upstream: the store is ``SqlStore`` on SQLite and PostgreSQL (the ``database_url``
fixture) instead of the SDK's test ``SQLiteStore``; ``TestSqliteStore`` and
``TestSqliteStoreCustomIds`` are two of the ``store`` fixture's parameters (the third is
the store of a streaming request, which reads ahead and caches); the contexts are
Kithost's (one end user of a published widget, and another end user of the same widget);
and where Kithost deliberately differs, the assertion says what Kithost does, with why.
Upstream's ``test_overwrite_thread_metadata`` is its ``test_update_thread_metadata`` again,
line for line: it is ported once.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from chatkit.store import NotFoundError
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    FileAttachment,
    ImageAttachment,
    InferenceOptions,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
    WidgetItem,
)
from chatkit.widgets import Card, Col, Text
from fastapi import FastAPI
from pydantic import AnyUrl
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat import agent
from kithost.chat.context import ChatContext
from kithost.chat.errors import ChatNotFound
from kithost.chat.runtime import runtime
from kithost.chat.store import SqlStore
from tests.chat.helpers import ALICE, CustomIdStore, context_of
from tests.conftest import state_of
from tests.fakes.openai_server import FakeOpenAI


def make_thread(
    thread_id: str = "test_thread", created_at: datetime | None = None
) -> ThreadMetadata:
    if created_at is None:
        created_at = datetime.now()
    return ThreadMetadata(
        id=thread_id,
        title="Test Thread",
        created_at=created_at,
        metadata={"test": "test"},
    )


def make_thread_items() -> list[ThreadItem]:
    now = datetime.now()
    user_msg = UserMessageItem(
        id="msg_100000",
        content=[UserMessageTextContent(text="Hello!")],
        attachments=[
            FileAttachment(
                id="file_1",
                type="file",
                mime_type="text/plain",
                name="test.txt",
                metadata={"source": "test"},
            )
        ],
        inference_options=InferenceOptions(),
        thread_id="test_thread",
        created_at=now,
    )
    assistant_msg = AssistantMessageItem(
        id="msg_000001",
        content=[AssistantMessageContent(text="Hi there!")],
        thread_id="test_thread",
        created_at=now + timedelta(seconds=1),
    )
    widget = WidgetItem(
        id="widget_1",
        type="widget",
        thread_id="test_thread",
        created_at=now + timedelta(seconds=2),
        widget=Card(
            children=[
                Col(
                    padding={"x": 4, "y": 3},
                    border={"bottom": 1},
                    children=[
                        Text(value="Title", weight="medium", size="sm", color="secondary"),
                        Text(value="test"),
                    ],
                ),
            ]
        ),
    )
    return [user_msg, assistant_msg, widget]


def user_message(thread_id: str, item_id: str, text: str, at: datetime) -> UserMessageItem:
    return UserMessageItem(
        id=item_id,
        content=[UserMessageTextContent(text=text)],
        attachments=[],
        inference_options=InferenceOptions(),
        thread_id=thread_id,
        created_at=at,
    )


@pytest.fixture
async def context(app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI) -> ChatContext:
    """Upstream's ``DEFAULT_CONTEXT``."""
    return await context_of(db, app, fake_openai)


@pytest.fixture
def other_context(context: ChatContext) -> ChatContext:
    """Upstream's ``ALTERNATIVE_CONTEXT``: another end user of the same widget."""
    return dataclasses.replace(context, end_user_id=ALICE)


@pytest.fixture(params=["default_ids", "custom_ids", "read_ahead"])
def store(request: pytest.FixtureRequest, app: FastAPI) -> SqlStore:
    """Upstream runs the suite on its store and on a subclass with its own id generators;
    here also on the store of a streaming request (which reads a thread's latest items with
    it and keeps them)."""
    kind = CustomIdStore if request.param == "custom_ids" else SqlStore
    read_ahead = agent.HISTORY_ITEMS if request.param == "read_ahead" else 0
    parts = runtime(state_of(app))
    return kind(parts.sessionmaker, parts.storage, parts.urls, parts.facts, read_ahead=read_ahead)


async def test_save_and_load_thread_metadata(store: SqlStore, context: ChatContext) -> None:
    thread = make_thread()
    await store.save_thread(thread, context)
    loaded_meta = await store.load_thread(thread.id, context)
    assert loaded_meta.id == thread.id
    assert loaded_meta.title == thread.title
    assert loaded_meta.metadata == thread.metadata


async def test_save_and_load_thread_metadata_null_title(
    store: SqlStore, context: ChatContext
) -> None:
    thread = ThreadMetadata(
        id="test_thread", title=None, created_at=datetime.now(), metadata={"test": "test"}
    )
    await store.save_thread(thread, context)
    loaded_meta = await store.load_thread(thread.id, context)
    assert loaded_meta.id == thread.id
    assert loaded_meta.title is None
    assert loaded_meta.metadata == thread.metadata


async def test_update_thread_metadata(store: SqlStore, context: ChatContext) -> None:
    thread = make_thread()
    await store.save_thread(thread, context)
    thread.title = "Updated Title"
    await store.save_thread(thread, context)
    loaded_meta = await store.load_thread(thread.id, context)
    assert loaded_meta.title == "Updated Title"


async def test_save_and_load_thread_items(store: SqlStore, context: ChatContext) -> None:
    thread = make_thread()
    items = make_thread_items()
    await store.save_thread(thread, context)
    for item in items:
        await store.add_thread_item(thread.id, item, context)
    loaded_items = (await store.load_thread_items(thread.id, None, 10, "asc", context)).data
    assert loaded_items == items


async def test_save_and_load_file(store: SqlStore, context: ChatContext) -> None:
    file = FileAttachment(id="file_1", type="file", mime_type="text/plain", name="test.txt")
    await store.save_attachment(file, context)
    loaded = await store.load_attachment(file.id, context)
    assert loaded == file


async def test_save_and_load_image(store: SqlStore, context: ChatContext) -> None:
    image = ImageAttachment(
        id="image_1",
        type="image",
        mime_type="image/png",
        name="test.png",
        preview_url=AnyUrl("https://example.com/test.png"),
        metadata={"source": "test"},
    )
    await store.save_attachment(image, context)
    loaded = await store.load_attachment(image.id, context)
    # Kithost differs: a preview is served by Kithost to its owner only, so the store hands
    # out its own preview URL, signed afresh for the reader (upstream: ``loaded == image``).
    assert isinstance(loaded, ImageAttachment)
    assert loaded == image.model_copy(update={"preview_url": loaded.preview_url})
    preview = urlsplit(str(loaded.preview_url))
    public_key = context.widget.public_key
    assert preview.path == f"/v1/chatkit/{public_key}/attachments/{image.id}/preview"
    [token] = parse_qs(preview.query)["token"]
    assert store.urls.end_user("preview", public_key, image.id, token) == context.end_user_id


async def test_load_threads(store: SqlStore, context: ChatContext) -> None:
    now = datetime.now()
    thread1 = make_thread(thread_id="thread1", created_at=now)
    thread2 = make_thread(thread_id="thread2", created_at=now + timedelta(seconds=1))
    thread3 = make_thread(thread_id="thread3", created_at=now + timedelta(seconds=2))
    await store.save_thread(thread1, context)
    await store.save_thread(thread2, context)
    await store.save_thread(thread3, context)

    page1 = await store.load_threads(limit=2, after=None, order="asc", context=context)
    assert [t.id for t in page1.data] == ["thread1", "thread2"]
    assert page1.has_more is True
    assert page1.after == "thread2"

    page2 = await store.load_threads(limit=2, after=page1.data[-1].id, order="asc", context=context)
    assert [t.id for t in page2.data] == ["thread3"]
    assert page2.has_more is False
    assert not page2.after


async def test_thread_items_ordering(store: SqlStore, context: ChatContext) -> None:
    thread = make_thread()
    now = datetime.now()
    items = [
        user_message(thread.id, f"msg{n + 1}", text, now + timedelta(seconds=n))
        for n, text in enumerate("ABC")
    ]
    await store.save_thread(thread, context)
    for item in items:
        await store.add_thread_item(thread.id, item, context)

    asc = await store.load_thread_items(
        thread.id, after=None, limit=3, order="asc", context=context
    )
    desc = await store.load_thread_items(
        thread.id, after=None, limit=3, order="desc", context=context
    )
    assert [i.id for i in asc.data] == ["msg1", "msg2", "msg3"]
    assert [i.id for i in desc.data] == ["msg3", "msg2", "msg1"]


async def test_thread_items_offset(store: SqlStore, context: ChatContext) -> None:
    thread = make_thread()
    now = datetime.now()
    items = [
        user_message(thread.id, f"msg{i}", str(i), now + timedelta(seconds=i)) for i in range(5)
    ]
    await store.save_thread(thread, context)
    for item in items:
        await store.add_thread_item(thread.id, item, context)

    after = await store.load_thread_items(
        thread.id, after="msg1", limit=3, order="asc", context=context
    )
    assert [i.id for i in after.data] == ["msg2", "msg3", "msg4"]
    assert after.has_more is False
    assert not after.after

    after_limit = await store.load_thread_items(
        thread.id, after=None, limit=2, order="asc", context=context
    )
    assert [i.id for i in after_limit.data] == ["msg0", "msg1"]
    assert after_limit.has_more is True
    assert after_limit.after == "msg1"


async def test_save_and_load_item(store: SqlStore, context: ChatContext) -> None:
    thread = make_thread()
    now = datetime.now()
    assistant_msg = AssistantMessageItem(
        id="msg_000001", content=[], thread_id=thread.id, created_at=now
    )
    widget = WidgetItem(
        id="widget_1",
        type="widget",
        thread_id=thread.id,
        created_at=now + timedelta(seconds=1),
        widget=Card(children=[Text(value="Test")]),
    )
    await store.save_thread(thread, context)
    await store.add_thread_item(thread.id, assistant_msg, context)
    await store.add_thread_item(thread.id, widget, context)

    assistant_msg.content = [AssistantMessageContent(text="This is an assistant message.")]
    await store.save_item(thread.id, assistant_msg, context)
    loaded_assistant = await store.load_item(thread.id, assistant_msg.id, context)
    assert isinstance(loaded_assistant, AssistantMessageItem)
    assert loaded_assistant.id == assistant_msg.id
    assert loaded_assistant.content[0] == AssistantMessageContent(
        text="This is an assistant message."
    )

    await store.save_item(thread.id, widget, context)
    loaded_widget = await store.load_item(thread.id, widget.id, context)
    assert isinstance(loaded_widget, WidgetItem)
    assert loaded_widget.id == widget.id


async def test_load_nonexistent_item(store: SqlStore, context: ChatContext) -> None:
    thread = make_thread()
    await store.save_thread(thread, context)
    with pytest.raises(NotFoundError):
        await store.load_item(thread.id, "does_not_exist", context)


async def test_thread_isolation_by_user(
    store: SqlStore, context: ChatContext, other_context: ChatContext
) -> None:
    thread = make_thread(thread_id="user1_thread")
    await store.save_thread(thread, context)

    # Should be accessible by the same user
    loaded_default = await store.load_thread(thread.id, context)
    assert loaded_default.title == thread.title

    # Should not be accessible by another user
    with pytest.raises(NotFoundError):
        await store.load_thread(thread.id, other_context)


async def test_thread_items_isolation_by_user(
    store: SqlStore, context: ChatContext, other_context: ChatContext
) -> None:
    thread = make_thread(thread_id="shared_thread")
    await store.save_thread(thread, context)

    items_default = make_thread_items()
    for item in items_default:
        await store.add_thread_item(thread.id, item, context)

    # Should be accessible by the same user
    loaded_items_default = (await store.load_thread_items(thread.id, None, 10, "asc", context)).data
    assert loaded_items_default == items_default

    # Kithost differs: another end user's thread is not found (404 thread_not_found), the
    # same answer as for a thread that does not exist, never an empty list (upstream:
    # ``.data == []``), so a page of items never tells anyone that the thread exists.
    with pytest.raises(ChatNotFound) as refused:
        await store.load_thread_items(thread.id, None, 10, "asc", other_context)
    assert refused.value.code == "thread_not_found"

    with pytest.raises(NotFoundError):
        await store.load_item(thread.id, items_default[0].id, other_context)


@pytest.mark.parametrize("store", ["default_ids"], indirect=True)
async def test_default_id_generators_use_default_prefixes(
    store: SqlStore, context: ChatContext
) -> None:
    thread_id = store.generate_thread_id(context)
    assert thread_id.startswith("thr_")

    thread = make_thread(thread_id=thread_id)
    assert store.generate_item_id("message", thread, context).startswith("msg_")
    assert store.generate_item_id("tool_call", thread, context).startswith("tc_")
    assert store.generate_item_id("task", thread, context).startswith("tsk_")
    assert store.generate_item_id("workflow", thread, context).startswith("wf_")


@pytest.mark.parametrize("store", ["custom_ids"], indirect=True)
async def test_overridden_id_generators_are_used(store: SqlStore, context: ChatContext) -> None:
    thread_id = store.generate_thread_id(context)
    assert thread_id == "thr_custom_1"

    thread = make_thread(thread_id=thread_id)
    msg_id = store.generate_item_id("message", thread, context)
    tool_call_id = store.generate_item_id("tool_call", thread, context)
    task_id = store.generate_item_id("task", thread, context)

    assert msg_id == "message_custom_2_thr_custom_1"
    assert tool_call_id == "tool_call_custom_3_thr_custom_1"
    assert task_id == "task_custom_4_thr_custom_1"

    thread2 = make_thread(thread_id=store.generate_thread_id(context))
    assert thread2.id == "thr_custom_5"
    msg_id2 = store.generate_item_id("message", thread2, context)
    tool_call_id2 = store.generate_item_id("tool_call", thread2, context)
    task_id2 = store.generate_item_id("task", thread2, context)

    assert msg_id2 == "message_custom_6_thr_custom_5"
    assert tool_call_id2 == "tool_call_custom_7_thr_custom_5"
    assert task_id2 == "task_custom_8_thr_custom_5"
