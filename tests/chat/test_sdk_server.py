"""The ``openai-chatkit`` SDK's own server tests (threads, items, streaming, retries),
run against Kithost's ``ChatServer`` and ``SqlStore``.

Ported from openai/chatkit-python at tag v1.6.5 (the version requirements.lock pins),
``tests/test_chatkit_server.py``: Copyright 2025 OpenAI, licensed under the Apache License
2.0 (a copy, with upstream's NOTICE: tests/chat/LICENSE-openai-chatkit.txt). Changed from
upstream: the server is Kithost's ``ChatServer`` with upstream's scripted ``respond`` (and
``action``/``sync_action``/feedback callbacks), on ``SqlStore`` over SQLite and PostgreSQL,
one server and store per request as Kithost serves them (tests/chat/sdk_server.py says
why); ``with make_server(...) as server`` is the ``make_server`` fixture; the context is an
end user of a published widget. Where Kithost deliberately differs, the assertion says what
Kithost does, with why.

Left out of the port: ``test_returns_widget_item_generator`` and
``test_returns_widget_item_generator_full_replace`` (the SDK's ``stream_widget`` helper: no
server or store involved); ``test_input_transcribe_decodes_base64_and_normalizes_mime_type``
(Kithost does not transcribe: ``input.transcribe`` is a 400 ``unsupported_request``, see
test_access.py); ``test_retry_after_item_passes_tools_to_responder`` (empty upstream).
Attachments, actions, structured input and feedback: test_sdk_server_actions.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast

import pytest
from chatkit.errors import ErrorCode
from chatkit.server import (
    StreamingResult,
)
from chatkit.store import (
    NotFoundError,
)
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ClientToolCallItem,
    CustomTask,
    InferenceOptions,
    LockedStatus,
    ProgressUpdateEvent,
    Thread,
    ThreadAddClientToolOutputParams,
    ThreadCreatedEvent,
    ThreadDeleteParams,
    ThreadGetByIdParams,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemReplacedEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadRetryAfterItemParams,
    ThreadsAddClientToolOutputReq,
    ThreadsDeleteReq,
    ThreadsGetByIdReq,
    ThreadsRetryAfterItemReq,
    ThreadStreamEvent,
    ThreadsUpdateReq,
    ThreadUpdatedEvent,
    ThreadUpdateParams,
    ToolChoice,
    UserMessageItem,
    WidgetItem,
    Workflow,
    WorkflowItem,
    WorkflowTaskAdded,
)
from chatkit.widgets import Card, Text
from pydantic import TypeAdapter

from kithost.chat.errors import ChatNotFound
from tests.chat.helpers import CustomIdStore
from tests.chat.sdk_server import (
    MakeServer,
    Responder,
    SdkServer,
    add_user_message,
    assistant_message_done,
    create_thread,
    decode_event,
    decode_streaming_result,
    user_message_done,
)


async def cancelled_thread(server: SdkServer) -> Thread:
    """A thread created by a response the responder cancels, with the SDK's note of that.

    (Upstream's two cancellation tests repeat these steps and assertions, and patch their
    test store to generate ids for hidden context items: ``SqlStore`` generates them.)
    """
    stream = await server.process(
        create_thread("Hello").model_dump_json(),
        server.context,
    )
    assert isinstance(stream, StreamingResult)

    events: list[ThreadStreamEvent] = []
    with pytest.raises(asyncio.CancelledError):  # noqa: PT012
        async for raw in stream.json_events:
            events.append(decode_event(raw))

    thread = next(e.thread for e in events if e.type == "thread.created")
    items = await server.store.load_thread_items(thread.id, None, 1, "desc", server.context)
    hidden_context_item = items.data[-1]
    assert hidden_context_item.type == "sdk_hidden_context"
    assert (
        hidden_context_item.content
        == "The user cancelled the stream. Stop responding to the prior request."
    )
    return thread


async def test_stream_cancellation_persists_pending_assistant_message_and_hidden_context(
    make_server: MakeServer,
) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        yield ThreadItemAddedEvent(
            item=AssistantMessageItem(
                id="assistant-message-pending",
                created_at=datetime.now(),
                content=[AssistantMessageContent(text="Hello, ")],
                thread_id=thread.id,
            )
        )
        yield ThreadItemUpdatedEvent(
            item_id="assistant-message-pending",
            update=AssistantMessageContentPartTextDelta(
                content_index=0,
                delta="World!",
            ),
        )
        raise asyncio.CancelledError()

    server = make_server(responder)
    thread = await cancelled_thread(server)

    assistant_message_item = await server.store.load_item(
        thread.id, "assistant-message-pending", server.context
    )
    assert assistant_message_item.type == "assistant_message"
    assert assistant_message_item.content[0].text == "Hello, World!"


async def test_stream_cancellation_does_not_persist_pending_empty_assistant_message(
    make_server: MakeServer,
) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        yield ThreadItemAddedEvent(
            item=AssistantMessageItem(
                id="assistant-message-pending",
                created_at=datetime.now(),
                content=[],
                thread_id=thread.id,
            )
        )
        raise asyncio.CancelledError()

    server = make_server(responder)
    thread = await cancelled_thread(server)

    with pytest.raises(NotFoundError):
        await server.store.load_item(thread.id, "assistant-message-pending", server.context)


async def test_workflow_task_not_duplicated_on_done_event(make_server: MakeServer) -> None:
    """
    Regression test to make sure pending item updates do not modify the
    origin item that was streamed.
    """

    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        workflow_item = WorkflowItem(
            id="workflow-item",
            created_at=datetime.now(),
            thread_id=thread.id,
            workflow=Workflow(type="custom", tasks=[]),
        )

        yield ThreadItemAddedEvent(item=workflow_item)

        task = CustomTask(title="foo", content="bar")
        yield ThreadItemUpdatedEvent(
            item_id=workflow_item.id,
            update=WorkflowTaskAdded(task=task, task_index=0),
        )

        workflow_item.workflow.tasks.append(task)
        yield ThreadItemDoneEvent(item=workflow_item)

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Hello"))

    thread = next(e.thread for e in events if e.type == "thread.created")
    workflow_done_event = next(
        e for e in events if isinstance(e, ThreadItemDoneEvent) and isinstance(e.item, WorkflowItem)
    )
    workflow_done_item = cast(WorkflowItem, workflow_done_event.item)
    assert len(workflow_done_item.workflow.tasks) == 1
    assert workflow_done_item.workflow.tasks[0].title == "foo"

    stored = await server.store.load_item(thread.id, workflow_done_item.id, server.context)
    assert isinstance(stored, WorkflowItem)
    stored_workflow = stored
    assert len(stored_workflow.workflow.tasks) == 1
    assert stored_workflow.workflow.tasks[0].title == "foo"


async def test_creates_thread(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        return
        yield

    server = make_server(responder)
    events = await server.process_streaming(
        create_thread("Hello, world!", quoted_text="Quoted text")
    )

    thread_created_event = next(event for event in events if event.type == "thread.created")
    assert thread_created_event.thread.title is None

    item_done_event = next(event.item for event in events if event.type == "thread.item.done")

    assert item_done_event.type == "user_message"
    assert item_done_event.content[0].text == "Hello, world!"
    assert item_done_event.quoted_text == "Quoted text"


async def test_saves_thread_title(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        thread.title = "Updated title"
        return
        yield

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Hello, world!"))
    thread = next(event.thread for event in events if event.type == "thread.created")
    assert (await server.store.load_thread(thread.id, server.context)).title == "Updated title"
    assert events[-1].type == "thread.updated"
    assert events[-1].thread.title == "Updated title"


async def test_saves_thread_metadata(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        thread.metadata["test_key"] = "test_value"
        return
        yield

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Hello, world!"))
    thread = next(event.thread for event in events if event.type == "thread.created")
    assert (await server.store.load_thread(thread.id, server.context)).metadata[
        "test_key"
    ] == "test_value"
    assert events[-1].type == "thread.updated"


async def test_saves_thread_locked_fields(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        thread.status = LockedStatus(reason="Because")
        return
        yield

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Hello, world!"))
    thread = next(event.thread for event in events if event.type == "thread.created")
    loaded = await server.store.load_thread(thread.id, server.context)
    assert loaded.status == LockedStatus(reason="Because")
    assert events[-1].type == "thread.updated"
    assert events[-1].thread.status == LockedStatus(reason="Because")


async def test_saves_allowed_image_domains_and_streams_thread_updated(
    make_server: MakeServer,
) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        thread.allowed_image_domains = ["example.com", "images.example.com"]
        return
        yield

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Hello, world!"))
    thread = next(event.thread for event in events if event.type == "thread.created")
    loaded = await server.store.load_thread(thread.id, server.context)
    assert loaded.allowed_image_domains == ["example.com", "images.example.com"]
    assert events[-1].type == "thread.updated"
    assert events[-1].thread.allowed_image_domains == [
        "example.com",
        "images.example.com",
    ]


async def test_omits_unset_allowed_image_domains_in_created_and_updated_json_events(
    make_server: MakeServer,
) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        thread.title = "Updated title"
        return
        yield

    server = make_server(responder)
    stream = await server.process(
        create_thread("Hello, world!").model_dump_json(),
        server.context,
    )
    assert isinstance(stream, StreamingResult)

    thread_created_event: dict[str, Any] | None = None
    thread_updated_event: dict[str, Any] | None = None
    async for raw in stream.json_events:
        event = json.loads(raw.split(b"data: ")[1])
        if event["type"] == "thread.created":
            thread_created_event = event
        if event["type"] == "thread.updated":
            thread_updated_event = event

    assert thread_created_event is not None
    assert "allowed_image_domains" not in thread_created_event["thread"]

    assert thread_updated_event is not None
    assert thread_updated_event["thread"]["title"] == "Updated title"
    assert "allowed_image_domains" not in thread_updated_event["thread"]


async def test_emits_thread_updated_mid_stream_and_persists(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        # First assistant message
        yield assistant_message_done(thread, "assistant_a", "A")

        # Update the thread mid-stream
        thread.title = "Mid-stream title"

        # Second assistant message, after which thread.updated should be emitted
        yield assistant_message_done(thread, "assistant_b", "B")

        # Continue streaming after the update event
        yield assistant_message_done(thread, "assistant_c", "C")

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Hello"))

    # Find the created thread
    thread = next(e.thread for e in events if isinstance(e, ThreadCreatedEvent))

    # Ensure a thread.updated event occurs right after assistant_b
    idx_b = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, ThreadItemDoneEvent)
        and isinstance(e.item, AssistantMessageItem)
        and e.item.id == "assistant_b"
    )
    assert isinstance(events[idx_b + 1], ThreadUpdatedEvent)
    updated_event = cast(ThreadUpdatedEvent, events[idx_b + 1])
    assert updated_event.thread.title == "Mid-stream title"

    # Streaming continues after the update event
    assert isinstance(events[idx_b + 2], ThreadItemDoneEvent)
    done_event = cast(ThreadItemDoneEvent, events[idx_b + 2])
    assert isinstance(done_event.item, AssistantMessageItem)
    assert done_event.item.id == "assistant_c"

    # Persisted in the store
    saved = await server.store.load_thread(thread.id, server.context)
    assert saved.title == "Mid-stream title"


async def test_respond_with_tool_call(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        if isinstance(input, UserMessageItem):
            yield ThreadItemDoneEvent(
                item=ClientToolCallItem(
                    id="msg_1",
                    created_at=datetime.now(),
                    name="tool_call_1",
                    arguments={"arg1": "val1", "arg2": False},
                    call_id="tool_call_1",
                    thread_id=thread.id,
                ),
            )
        elif input is None:
            yield assistant_message_done(thread, "msg_2", "Glad the tool call succeeded!")

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Hello, world!"))

    assert len(events) == 4
    assert events[0].type == "thread.created"
    thread = events[0].thread

    assert events[1].type == "thread.item.done"
    assert events[1].item.type == "user_message"

    assert events[2].type == "stream_options"

    assert events[3].type == "thread.item.done"
    assert events[3].item.type == "client_tool_call"
    assert events[3].item.id == "msg_1"
    assert events[3].item.name == "tool_call_1"
    assert events[3].item.arguments == {"arg1": "val1", "arg2": False}
    assert events[3].item.call_id == "tool_call_1"

    events = await server.process_streaming(
        ThreadsAddClientToolOutputReq(
            params=ThreadAddClientToolOutputParams(
                thread_id=thread.id,
                result={"text": "Wow!"},
            )
        )
    )

    assert len(events) == 2
    assert events[0].type == "stream_options"
    assert events[1].type == "thread.item.done"
    assert events[1].item.type == "assistant_message"


async def test_respond_with_tool_status(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        yield ProgressUpdateEvent(text="Tool status")
        yield assistant_message_done(thread, "msg_4", "Hello, world!")

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Hello, world!"))

    assert len(events) == 5
    assert events[0].type == "thread.created"
    assert events[1].type == "thread.item.done"
    assert events[2].type == "stream_options"
    assert events[3].type == "progress_update"
    assert events[4].type == "thread.item.done"


async def test_list_threads_response(make_server: MakeServer) -> None:
    server = make_server()
    await server.create_threads(25)
    threads = await server.list_threads(limit=20)
    assert len(threads.data) == 20

    # Newest first
    assert threads.data[0].created_at > threads.data[1].created_at
    assert threads.has_more is True
    assert threads.after is not None

    threads = await server.list_threads(after=threads.data[-1].id)
    assert len(threads.data) == 5
    assert threads.has_more is False
    assert not threads.after


async def test_list_items_response(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        for i in range(25):
            yield user_message_done(thread, f"msg_{i}", f"Message {i}")

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Thread 1"))
    thread = next(event.thread for event in events if event.type == "thread.created")
    items = await server.list_items(thread.id)
    assert len(items.data) == 20
    # Newest first
    assert items.data[0].created_at > items.data[1].created_at
    assert items.has_more is True
    assert items.after is not None

    items = await server.list_items(thread.id, after=items.data[-1].id)
    assert len(items.data) == 6  # +1 for user message
    assert items.has_more is False


async def test_get_thread_by_id(make_server: MakeServer) -> None:
    server = make_server()
    # Create a thread by sending a ThreadCreateRequest
    events = await server.process_streaming(create_thread("Test thread"))
    thread = next(event.thread for event in events if event.type == "thread.created")

    # Retrieve the thread by id
    result = await server.process_non_streaming(
        ThreadsGetByIdReq(
            params=ThreadGetByIdParams(thread_id=thread.id),
        )
    )
    loaded_thread = TypeAdapter(Thread).validate_json(result.json)
    assert loaded_thread.id == thread.id
    assert loaded_thread.title == thread.title
    assert loaded_thread.items.data[0].type == "user_message"
    assert loaded_thread.items.data[0].content[0].text == "Test thread"


async def test_list_threads_paginated_response(make_server: MakeServer) -> None:
    server = make_server()
    await server.create_threads(25)
    threads = await server.list_threads(limit=20)
    assert len(threads.data) == 20
    assert threads.has_more is True
    assert threads.after is not None

    threads = await server.list_threads(after=threads.data[-1].id)
    assert len(threads.data) == 5
    assert threads.has_more is False


async def test_threads_update_request(make_server: MakeServer) -> None:
    server = make_server()
    events = await server.process_streaming(create_thread("Hello, world!"))
    thread = next(event.thread for event in events if event.type == "thread.created")
    result = await server.process_non_streaming(
        ThreadsUpdateReq(params=ThreadUpdateParams(thread_id=thread.id, title="New Title"))
    )
    updated_thread = TypeAdapter[Thread](Thread).validate_json(result.json)
    assert updated_thread.title == "New Title"


async def test_delete_thread(make_server: MakeServer) -> None:
    server = make_server()
    events = await server.process_streaming(create_thread("Thread to delete"))
    thread = next(event.thread for event in events if event.type == "thread.created")

    response = await server.process_non_streaming(
        ThreadsDeleteReq(params=ThreadDeleteParams(thread_id=thread.id))
    )
    assert response.json == b"{}"

    with pytest.raises(NotFoundError) as e:
        await server.process_non_streaming(
            ThreadsGetByIdReq(
                params=ThreadGetByIdParams(thread_id=thread.id),
            )
        )
    # Kithost differs: the error says "No such thread." without the id the caller sent (the
    # endpoint answers it as a 404 problem, ``code`` thread_not_found), not upstream's
    # f"Thread {thread.id} not found".
    assert isinstance(e.value, ChatNotFound)
    assert e.value.code == "thread_not_found"


async def test_thread_item_removed_event_removes_item(make_server: MakeServer) -> None:
    removed_id = "msg_to_remove"

    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        yield user_message_done(thread, removed_id, "To be removed")
        yield ThreadItemRemovedEvent(item_id=removed_id)

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Trigger removal"))
    thread = next(event.thread for event in events if event.type == "thread.created")
    assert any(e.type == "thread.item.removed" and e.item_id == removed_id for e in events)
    # The item should not be present in the store
    items = (await server.list_items(thread.id)).data
    assert all(i.id != removed_id for i in items)


async def test_raising_in_responder_yields_error_event(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        raise ValueError("Test error")
        yield

    server = make_server(responder)
    result = await server.process(
        create_thread("Test error").model_dump_json(),
        server.context,
    )
    assert isinstance(result, StreamingResult)
    iter = aiter(result.json_events)

    # Yield an errro
    async for raw in iter:
        e = decode_event(raw)
        if e.type == "error":
            assert e.code == ErrorCode.STREAM_ERROR
            break
    else:
        raise AssertionError("Expected error event")

    # Then finish
    with pytest.raises(StopAsyncIteration):
        await iter.__anext__()


async def test_thread_item_replaced_event_replaces_item(make_server: MakeServer) -> None:
    original_id = "msg_to_replace"

    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        # First add an item
        yield user_message_done(thread, original_id, "Original content")
        # Then replace it
        replacement_item = AssistantMessageItem(
            id=original_id,
            content=[AssistantMessageContent(text="This is the replacement content")],
            created_at=datetime.now(),
            thread_id=thread.id,
        )
        yield ThreadItemReplacedEvent(item=replacement_item)

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Trigger replacement"))
    thread = next(event.thread for event in events if event.type == "thread.created")

    # Verify the replacement event was generated
    assert any(e.type == "thread.item.replaced" and e.item.id == original_id for e in events)

    # Verify the item was replaced in the store
    items = (await server.list_items(thread.id)).data

    # Find the replaced item
    replaced_item = next((i for i in items if i.id == original_id), None)
    assert replaced_item is not None
    assert isinstance(replaced_item, AssistantMessageItem)
    assert isinstance(replaced_item.content[0], AssistantMessageContent)
    assert replaced_item.content[0].text == "This is the replacement content"


async def test_thread_item_replaced_event_with_widget(make_server: MakeServer) -> None:
    widget_id = "widget_to_replace"
    original_widget = Card(children=[Text(value="Original widget content")])
    replacement_widget = Card(children=[Text(value="Replaced widget content")])

    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        # First add a widget item
        yield ThreadItemDoneEvent(
            item=WidgetItem(
                id=widget_id,
                widget=original_widget,
                created_at=datetime.now(),
                thread_id=thread.id,
            ),
        )
        # Then replace it
        yield ThreadItemReplacedEvent(
            item=WidgetItem(
                id=widget_id,
                widget=replacement_widget,
                created_at=datetime.now(),
                thread_id=thread.id,
            ),
        )

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Trigger widget replacement"))
    thread = next(event.thread for event in events if event.type == "thread.created")

    # Verify the replacement event was generated
    replacement_event = next(
        (e for e in events if e.type == "thread.item.replaced" and e.item.id == widget_id),
        None,
    )
    assert replacement_event is not None
    assert isinstance(replacement_event.item, WidgetItem)
    assert replacement_event.item.widget == replacement_widget

    # Verify the item was replaced in the store
    items = (await server.list_items(thread.id)).data

    # Find the replaced widget item
    replaced_item = next((i for i in items if i.id == widget_id), None)
    assert replaced_item is not None
    assert isinstance(replaced_item, WidgetItem)
    assert isinstance(replaced_item.widget, Card)
    assert isinstance(replaced_item.widget.children[0], Text)
    assert replaced_item.widget.children[0].value == "Replaced widget content"


async def test_retry_after_item(make_server: MakeServer) -> None:
    responder_calls: list[Any] = []

    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        responder_calls.append(input)

        if len(responder_calls) == 1:
            # First response - return an assistant message
            yield assistant_message_done(thread, "assistant_msg_1", "First response")
        else:
            # Retry response - return different content
            yield assistant_message_done(thread, "assistant_msg_2", "Retried response")

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Hello, world!"))
    thread = next(event.thread for event in events if event.type == "thread.created")

    items_before = await server.list_items(thread.id)
    assert len(items_before.data) == 2
    assert items_before.data[0].type == "assistant_message"
    assert items_before.data[0].content[0].type == "output_text"
    assert items_before.data[0].content[0].text == "First response"
    assert items_before.data[1].type == "user_message"
    assert items_before.data[1].content[0].text == "Hello, world!"

    # Get the user message ID for retrying after it
    user_message_id = items_before.data[1].id

    # Retry after the user message
    retry_events = await server.process_streaming(
        ThreadsRetryAfterItemReq(
            params=ThreadRetryAfterItemParams(thread_id=thread.id, item_id=user_message_id)
        )
    )

    # Verify the retry generated new response
    assert len(retry_events) == 2
    assert retry_events[0].type == "stream_options"
    assert retry_events[1].type == "thread.item.done"
    assert retry_events[1].item.type == "assistant_message"
    assert retry_events[1].item.content[0].type == "output_text"
    assert retry_events[1].item.content[0].text == "Retried response"

    # Verify the responder was called twice with the same user message
    assert len(responder_calls) == 2
    assert responder_calls[0] == responder_calls[1]
    assert responder_calls[0].type == "user_message"
    assert responder_calls[0].content[0].text == "Hello, world!"

    # Verify the assistant response was replaced in storage
    items_after = await server.list_items(thread.id)
    assert len(items_after.data) == 2  # Still user message + assistant message
    assert items_after.data[0].type == "assistant_message"
    assert items_after.data[0].content[0].type == "output_text"
    assert items_after.data[0].content[0].text == "Retried response"  # New response
    assert items_after.data[1].type == "user_message"
    assert items_after.data[1].content[0].text == "Hello, world!"


async def test_retry_after_item_invalid_item(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        yield assistant_message_done(thread, "assistant_msg_1", "Response")

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Hello"))
    thread = next(event.thread for event in events if event.type == "thread.created")

    items = await server.list_items(thread.id)
    assistant_item_id = items.data[0].id

    # Try to retry after an assistant message (should fail)
    with pytest.raises(ValueError, match="is not a user message"):
        await server.process_streaming(
            ThreadsRetryAfterItemReq(
                params=ThreadRetryAfterItemParams(thread_id=thread.id, item_id=assistant_item_id)
            )
        )


async def test_retry_after_item_with_multiple_messages(make_server: MakeServer) -> None:
    responder_calls: list[Any] = []

    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        responder_calls.append(input)
        assert input is not None
        assert input.type == "user_message"
        yield assistant_message_done(
            thread, f"assistant_msg_{len(responder_calls)}", f"Response to: {input.content[0].text}"
        )

    server = make_server(responder)
    events = await server.process_streaming(create_thread("First message"))
    thread = next(event.thread for event in events if event.type == "thread.created")

    await server.process_streaming(add_user_message(thread.id, "Second message"))

    # Verify we have 4 items: user1, assistant1, user2, assistant2
    items_before = await server.list_items(thread.id)
    assert len(items_before.data) == 4

    # Get the second user message ID to retry after it
    second_user_message_id = items_before.data[1].id  # Second user message

    # Retry after the second user message
    retry_events = await server.process_streaming(
        ThreadsRetryAfterItemReq(
            params=ThreadRetryAfterItemParams(thread_id=thread.id, item_id=second_user_message_id)
        )
    )

    assert len(retry_events) == 2
    assert retry_events[0].type == "stream_options"
    assert retry_events[1].type == "thread.item.done"

    # Verify retry used the second user message
    assert len(responder_calls) == 3  # Original 2 + 1 retry
    assert responder_calls[2].type == "user_message"
    assert responder_calls[2].content[0].text == "Second message"

    # Verify only the last assistant response was removed and regenerated
    items_after = await server.list_items(thread.id)
    assert len(items_after.data) == 4  # Still 4 items
    # First user message and response should remain unchanged
    assert items_after.data[3].type == "user_message"
    assert items_after.data[3].content[0].text == "First message"
    assert items_after.data[3].content[0].type == "input_text"
    assert items_after.data[3].content[0].text == "First message"
    assert items_after.data[2].type == "assistant_message"
    assert items_after.data[2].content[0].type == "output_text"
    assert items_after.data[2].content[0].text == "Response to: First message"
    # Second user message should remain, but assistant response should be new
    assert items_after.data[1].type == "user_message"
    assert items_after.data[1].content[0].text == "Second message"
    assert items_after.data[0].type == "assistant_message"
    assert items_after.data[0].content[0].type == "output_text"
    assert items_after.data[0].content[0].text == "Response to: Second message"
    assert items_after.data[0].id != items_before.data[0].id


def expecting_tool_choice(tool_choice: ToolChoice, item_id: str) -> Responder:
    """The responder of upstream's two tool-choice tests (the same but for the item id)."""

    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        assert input is not None
        assert input.inference_options.tool_choice is not None
        assert input.inference_options.tool_choice.id == tool_choice.id

        yield assistant_message_done(thread, item_id, "ok")

    return responder


async def test_threads_create_passes_tools_to_responder(make_server: MakeServer) -> None:
    tool_choice = ToolChoice(id="web_search")
    responder = expecting_tool_choice(tool_choice, "assistant_msg_tools_create")

    server = make_server(responder)
    events = await server.process_streaming(
        create_thread(
            "Hello with tools", inference_options=InferenceOptions(tool_choice=tool_choice)
        )
    )
    # Sanity check that the request flowed through.
    assert any(e.type == "thread.item.done" for e in events)


async def test_threads_add_message_passes_tools_to_responder(make_server: MakeServer) -> None:
    tool_choice = ToolChoice(id="retrieval")
    responder = expecting_tool_choice(tool_choice, "assistant_msg_tools_add")

    server = make_server(responder)
    # Create a thread first.
    events = await server.process_streaming(
        create_thread("Start", inference_options=InferenceOptions(tool_choice=tool_choice))
    )
    thread = next(e.thread for e in events if e.type == "thread.created")

    # Add a message with tools and verify they reach the responder.
    events = await server.process_streaming(
        add_user_message(
            thread.id, "Second", inference_options=InferenceOptions(tool_choice=tool_choice)
        )
    )
    # Sanity check that the request flowed through.
    assert any(e.type == "thread.item.done" for e in events)


async def test_custom_id_generators_on_server(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        # Emit a tool call to later verify tool_call_output id generation
        return
        yield

    # Upstream's UniqueIdStore is test_sdk_store's CustomIdStore: the server's store, swapped.
    server = make_server(responder, store_type=CustomIdStore)

    # Create thread and verify thread id and user message id
    result = await server.process(
        create_thread("Hello").model_dump_json(),
        server.context,
    )
    assert isinstance(result, StreamingResult)
    events = await decode_streaming_result(result)

    thread_created = next(e for e in events if e.type == "thread.created")
    assert thread_created.thread.id == "thr_custom_1"

    user_message = next(
        e.item for e in events if e.type == "thread.item.done" and e.item.type == "user_message"
    )
    assert user_message.id == "message_custom_2_thr_custom_1"
