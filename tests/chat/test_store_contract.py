"""The store and server as the ``openai-chatkit`` SDK's contract has them, for any caller
(not only Kithost's own endpoint): caller-chosen thread ids, the user's message kept when
a response ends before any text, threads and items in the order they were created (not
written), a vanished cursor answered with an error (never a silently short list), the
recent-items cache scoped to its end user, an item replaced by one of another type counted
as that type, and a new thread saved again before it is written keeping the items added to
it so far."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx2
import pytest
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    ErrorEvent,
    FileAttachment,
    InferenceOptions,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat.errors import ChatNotFound
from kithost.chat.runtime import runtime
from kithost.chat.server import ChatServer
from kithost.chat.store import new_id
from kithost.models import ChatItem, ChatThread
from tests.chat.helpers import (
    ALICE,
    BOB,
    context_of,
    make_chat_widget,
    store_of,
    thread_of,
    visitor,
)
from tests.conftest import state_of
from tests.fakes.openai_server import FakeOpenAI


def user_message(thread_id: str, text: str, at: datetime | None = None) -> UserMessageItem:
    return UserMessageItem(
        id=new_id("message"),
        thread_id=thread_id,
        created_at=at or datetime.now(),
        content=[UserMessageTextContent(text=text)],
        attachments=[],
        inference_options=InferenceOptions(),
    )


def answer(thread_id: str, text: str, at: datetime) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=new_id("message"),
        thread_id=thread_id,
        created_at=at,
        content=[AssistantMessageContent(text=text)],
    )


async def test_a_thread_with_an_id_the_caller_chose_is_saved(
    app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    context = await context_of(db, app, fake_openai, BOB)
    store = store_of(app)
    thread = ThreadMetadata(id="thr_chosen_by_the_caller", created_at=datetime.now())
    await store.save_thread(thread, context)
    assert (await store.load_thread(thread.id, context)).id == thread.id
    await store.add_thread_item(thread.id, user_message(thread.id, "Hi"), context)
    await store.settled()
    assert len((await store.load_thread_items(thread.id, None, 10, "asc", context)).data) == 1

    someone_else = await context_of(db, app, fake_openai, ALICE)
    with pytest.raises(ChatNotFound):  # another end user's thread: not found, never theirs
        await store_of(app).save_thread(thread, someone_else)


async def test_through_the_sdks_process_a_response_without_text_keeps_the_message(
    app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    context = await context_of(db, app, fake_openai, BOB)
    fake_openai.fail_next(500)  # the model fails before its first token
    attachments = runtime(state_of(app)).attachment_store()
    server = ChatServer(
        attachments.store,
        attachments,
        settings=app.state.settings,
        box=app.state.secret_box,
        models=runtime(state_of(app)).models,
        new_message=True,
    )
    body = (
        '{"type": "threads.create", "params": {"input": {"content": [{"type": "input_text",'
        ' "text": "Hello?"}], "attachments": [], "inference_options": {}}}}'
    )
    result = await server.process(body, context)
    events = [event async for event in result]  # type: ignore[union-attr]
    assert any(b'"type":"error"' in e for e in events)
    [thread] = (await db.scalars(select(ChatThread).where(ChatThread.end_user_id == BOB))).all()
    kinds = await db.scalars(select(ChatItem.kind).where(ChatItem.thread_id == thread.id))
    assert list(kinds) == ["user_message"]


async def test_items_come_back_in_the_order_they_were_created(
    app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    context = await context_of(db, app, fake_openai, BOB)
    store = store_of(app)
    thread = ThreadMetadata(id=store.generate_thread_id(context), created_at=datetime.now())
    await store.save_thread(thread, context)
    start = datetime.now()
    later = answer(thread.id, "second", start + timedelta(seconds=2))
    earlier = answer(thread.id, "first", start + timedelta(seconds=1))
    await store.add_thread_item(thread.id, later, context)  # finished (stored) first
    await store.add_thread_item(thread.id, earlier, context)
    page = await store_of(app).load_thread_items(thread.id, None, 10, "asc", context)
    assert [item.id for item in page.data] == [earlier.id, later.id]


async def test_a_page_after_a_vanished_cursor_is_an_error_not_the_end(
    app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    context = await context_of(db, app, fake_openai, BOB)
    store = store_of(app)
    threads = []
    for _ in range(3):
        thread = ThreadMetadata(id=store.generate_thread_id(context), created_at=datetime.now())
        await store.save_thread(thread, context)
        await store.add_thread_item(thread.id, user_message(thread.id, "Hi"), context)
        await store.settled()
        threads.append(thread.id)
    first = await store.load_threads(1, None, "desc", context)
    assert first.has_more
    assert first.after is not None
    await store.delete_thread(first.after, context)  # the last one on screen goes
    with pytest.raises(ChatNotFound) as refused:
        await store.load_threads(1, first.after, "desc", context)
    assert refused.value.code == "cursor_not_found"

    items = await store.load_thread_items(threads[0], None, 10, "asc", context)
    gone = items.data[0].id
    await store.delete_thread_item(threads[0], gone, context)
    with pytest.raises(ChatNotFound) as refused:
        await store.load_thread_items(threads[0], gone, 10, "asc", context)
    assert refused.value.code == "cursor_not_found"


async def test_one_store_used_for_two_end_users_never_mixes_their_items(
    app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    bob = await context_of(db, app, fake_openai, BOB)
    alice = bob.__class__(**{**bob.__dict__, "end_user_id": ALICE})
    store = store_of(app)
    store.read_ahead = 10
    thread = ThreadMetadata(id=store.generate_thread_id(bob), created_at=datetime.now())
    await store.save_thread(thread, bob)
    await store.add_thread_item(thread.id, user_message(thread.id, "Bob's secret"), bob)
    await store.settled()
    assert len((await store.load_thread_items(thread.id, None, 10, "desc", bob)).data) == 1
    with pytest.raises(ChatNotFound):
        await store.load_thread_items(thread.id, None, 10, "desc", alice)


async def test_an_item_replaced_by_another_type_counts_as_that_type(
    app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    context = await context_of(db, app, fake_openai, BOB)
    store = store_of(app)
    thread = ThreadMetadata(id=store.generate_thread_id(context), created_at=datetime.now())
    await store.save_thread(thread, context)
    item = user_message(thread.id, "Hi")
    await store.add_thread_item(thread.id, item, context)
    await store.settled()
    replacement = answer(thread.id, "no longer a user message", item.created_at)
    await store.save_item(thread.id, replacement.model_copy(update={"id": item.id}), context)
    kind = await db.scalar(select(ChatItem.kind).where(ChatItem.id == item.id))
    assert kind == "assistant_message"  # the conversation list counts it as such


async def test_a_new_thread_saved_again_before_it_is_written_keeps_its_items(
    app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """The SDK saves a thread again as soon as a response changes it (a title, metadata),
    which can be before the new thread and its first message are written."""
    context = await context_of(db, app, fake_openai, BOB)
    store = store_of(app)
    thread = ThreadMetadata(id=store.generate_thread_id(context), created_at=datetime.now())
    await store.save_thread(thread, context)
    message = user_message(thread.id, "Hi")
    await store.add_thread_item(thread.id, message, context)
    thread.title = "Hi"
    await store.save_thread(thread, context)
    page = await store.load_thread_items(thread.id, None, 10, "desc", context)
    assert [item.id for item in page.data] == [message.id]
    await store.settled()
    assert (await store_of(app).load_thread(thread.id, context)).title == "Hi"


async def test_threads_come_back_in_the_order_they_were_created(
    app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """As the SDK's reference store lists them (by the thread's ``created_at``), not by
    when each was written: a new thread is written with its first message, so a chat opened
    in a second tab and answered sooner is written first."""
    context = await context_of(db, app, fake_openai, BOB)
    first_tab, second_tab = store_of(app), store_of(app)
    older = ThreadMetadata(id=first_tab.generate_thread_id(context), created_at=datetime.now())
    await first_tab.save_thread(older, context)
    newer = ThreadMetadata(id=second_tab.generate_thread_id(context), created_at=datetime.now())
    await second_tab.save_thread(newer, context)
    for store, thread in ((second_tab, newer), (first_tab, older)):
        await store.add_thread_item(thread.id, user_message(thread.id, "Hi"), context)
        await store.settled()
    page = await store_of(app).load_threads(10, None, "desc", context)
    assert [thread.id for thread in page.data] == [newer.id, older.id]


async def test_text_with_a_nul_character_is_stored_on_every_database(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """The SDK stores whatever a model or tool answered; PostgreSQL's JSONB refuses NUL
    (U+0000), so the store writes it as U+FFFD (the endpoint refuses it from visitors)."""
    widget = await make_chat_widget(db, app, fake_openai)
    await db.commit()
    alice = await visitor(http, app, db, widget)
    fake_openai.reply_text = "Null \x00 and void"
    events = await alice.send("Hi")
    assert not [event for event in events if isinstance(event, ErrorEvent)]
    items = await alice.call("items.list", thread_id=thread_of(events))
    assert items["data"][0]["content"][0]["text"] == "Null \ufffd and void"

    context = await context_of(db, app, fake_openai, BOB)
    store = store_of(app)
    thread = ThreadMetadata(id="thr_nul", title="a\x00b", created_at=datetime.now())
    await store.save_thread(thread, context)
    await store.save_attachment(
        FileAttachment(id="atc_nul", name="a\x00b.txt", mime_type="text/plain"), context
    )
    assert (await store.load_thread(thread.id, context)).title == "a\ufffdb"
    assert (await store.load_attachment("atc_nul", context)).name == "a\ufffdb.txt"
