"""The ``openai-chatkit`` SDK's own server tests (actions, structured input, feedback,
attachments, the context), run against Kithost's ``ChatServer`` and its stores.

The second half of upstream's ``tests/test_chatkit_server.py`` (v1.6.5, Copyright 2025
OpenAI, Apache License 2.0: tests/chat/LICENSE-openai-chatkit.txt); test_sdk_server.py has
the first, and says how the port differs from upstream. Left out here:
``test_create_file_without_filestore`` and ``test_delete_file_without_filestore``
(``ChatServer`` always has its attachment store: the SDK's ``RuntimeError`` for a server
without one cannot happen).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from chatkit.actions import Action
from chatkit.store import NotFoundError
from chatkit.types import (
    AssistantMessageItem,
    Attachment,
    AttachmentCreateParams,
    AttachmentDeleteParams,
    AttachmentsCreateReq,
    AttachmentsDeleteReq,
    FeedbackKind,
    FileAttachment,
    ItemFeedbackParams,
    ItemsFeedbackReq,
    StructuredInputAnswerSubmission,
    StructuredInputFreeform,
    StructuredInputItem,
    StructuredInputMultipleChoice,
    StructuredInputMultipleChoiceOption,
    StructuredInputSubmission,
    SyncCustomActionResponse,
    Thread,
    ThreadAddStructuredInputParams,
    ThreadCreatedEvent,
    ThreadCustomActionParams,
    ThreadItemDoneEvent,
    ThreadItemReplacedEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadsAddStructuredInputReq,
    ThreadsCustomActionReq,
    ThreadsSyncCustomActionReq,
    ThreadStreamEvent,
    UserMessageItem,
    WidgetItem,
    WidgetRootUpdated,
)
from chatkit.widgets import Card, Text
from pydantic import AnyUrl, TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat.attachments import Purpose
from kithost.chat.context import ChatContext
from kithost.models import ChatItem
from tests.chat.sdk_server import (
    MakeServer,
    SdkServer,
    add_user_message,
    assistant_message_done,
    create_thread,
)


async def test_flows_context_to_responder(make_server: MakeServer) -> None:
    responder_context = None
    add_feedback_context = None

    async def responder(
        thread: ThreadMetadata, input: UserMessageItem | None, context: Any
    ) -> AsyncIterator[ThreadStreamEvent]:
        nonlocal responder_context
        responder_context = context
        yield assistant_message_done(thread, "msg_1", "Hello, world!")

    def add_feedback(
        thread_id: str, item_ids: list[str], feedback: FeedbackKind, context: Any
    ) -> None:
        nonlocal add_feedback_context
        add_feedback_context = context

    server = make_server(responder, add_feedback)
    context = dataclasses.replace(server.context, end_user_id="a:anon_" + "c" * 24)
    events = await server.process_streaming(
        create_thread("Hello, world!"),
        context,
    )
    assert responder_context == context
    thread = next(event.thread for event in events if event.type == "thread.created")
    item = next(
        event.item
        for event in events
        if event.type == "thread.item.done" and event.item.type == "assistant_message"
    )
    await server.process_non_streaming(
        ItemsFeedbackReq(
            params=ItemFeedbackParams(
                thread_id=thread.id,
                item_ids=[item.id],
                kind="positive",
            )
        ),
        context,
    )
    assert add_feedback_context == context


CREATE_USER: Action[str, Any] = Action(type="create_user", payload={"user_id": "123"})
"""The action upstream's action tests send."""


async def widget_responder(
    thread: ThreadMetadata, input: UserMessageItem | None, context: Any
) -> AsyncIterator[ThreadStreamEvent]:
    """The responder of upstream's action tests: a widget to act on."""
    yield ThreadItemDoneEvent(
        item=WidgetItem(
            id="widget_1",
            type="widget",
            created_at=datetime.now(),
            thread_id=thread.id,
            widget=Card(
                children=[
                    Text(
                        key="text_1",
                        value="test",
                    )
                ],
            ),
        ),
    )


async def show_widget(server: SdkServer) -> tuple[Thread, WidgetItem]:
    """A new thread answered by :func:`widget_responder`, and its widget."""
    events = await server.process_streaming(create_thread("Show widget"))
    thread = next(event.thread for event in events if event.type == "thread.created")
    widget_item = next(
        event.item
        for event in events
        if isinstance(event, ThreadItemDoneEvent) and isinstance(event.item, WidgetItem)
    )
    return thread, widget_item


async def test_calls_action(make_server: MakeServer) -> None:
    actions = []

    async def action(
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        actions.append((action, sender))
        assert sender

        yield ThreadItemUpdatedEvent(
            item_id=sender.id,
            update=WidgetRootUpdated(
                widget=Card(
                    children=[
                        Text(value="Email sent!"),
                    ]
                ),
            ),
        )

    server = make_server(widget_responder, action_callback=action)
    thread, widget_item = await show_widget(server)

    events = await server.process_streaming(
        ThreadsCustomActionReq(
            params=ThreadCustomActionParams(
                thread_id=thread.id, item_id=widget_item.id, action=CREATE_USER
            )
        )
    )

    assert actions
    assert actions[0] == (
        Action(type="create_user", payload={"user_id": "123"}),
        widget_item,
    )

    assert len(events) == 2
    assert events[0].type == "stream_options"
    assert events[1].type == "thread.item.updated"
    assert isinstance(events[1], ThreadItemUpdatedEvent)
    assert events[1].update.type == "widget.root.updated"
    assert events[1].update.widget == Card(children=[Text(value="Email sent!")])


def subject() -> StructuredInputMultipleChoice:
    return StructuredInputMultipleChoice(
        id="subject",
        question="Which subject is this lesson for?",
        options=[
            StructuredInputMultipleChoiceOption(value="Math"),
            StructuredInputMultipleChoiceOption(value="Science"),
        ],
    )


def details() -> StructuredInputFreeform:
    return StructuredInputFreeform(id="details", question="Anything else to know?")


def lesson_questions(
    thread: ThreadMetadata, *inputs: StructuredInputMultipleChoice | StructuredInputFreeform
) -> ThreadItemDoneEvent:
    """The structured input item upstream's responders ask with (``si_1``)."""
    return ThreadItemDoneEvent(
        item=StructuredInputItem(
            id="si_1", thread_id=thread.id, created_at=datetime.now(), inputs=list(inputs)
        )
    )


async def submit_answers(
    server: SdkServer, thread_id: str, answers: dict[str, list[str]]
) -> list[ThreadStreamEvent]:
    """``threads.add_structured_input``: ``answers`` to ``si_1``, by input id."""
    submission = StructuredInputSubmission(
        status="answered",
        answers={
            key: StructuredInputAnswerSubmission(values=values) for key, values in answers.items()
        },
    )
    return await server.process_streaming(
        ThreadsAddStructuredInputReq(
            params=ThreadAddStructuredInputParams(
                thread_id=thread_id, item_id="si_1", input=submission
            )
        )
    )


async def test_add_structured_input_replaces_item_with_custom_answer_and_resumes_response(
    make_server: MakeServer,
) -> None:
    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if input is not None:
            yield lesson_questions(thread, subject(), details())
            return

        yield assistant_message_done(
            thread, "msg_after_structured_input", "Thanks, continuing now."
        )

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Plan a lesson"))
    thread = next(event.thread for event in events if isinstance(event, ThreadCreatedEvent))

    events = await submit_answers(
        server, thread.id, {"subject": ["Private class"], "details": ["Please include group work."]}
    )

    replaced_event = next(event for event in events if isinstance(event, ThreadItemReplacedEvent))
    assert isinstance(replaced_event.item, StructuredInputItem)
    assert replaced_event.item.status == "answered"
    assert replaced_event.item.inputs[0].answer is not None
    assert replaced_event.item.inputs[0].answer.values == ["Private class"]
    assert replaced_event.item.inputs[1].answer is not None
    assert replaced_event.item.inputs[1].answer.values == ["Please include group work."]

    persisted_item = await server.store.load_item(
        thread.id,
        "si_1",
        server.context,
    )
    assert persisted_item == replaced_event.item
    assert any(
        isinstance(event, ThreadItemDoneEvent)
        and isinstance(event.item, AssistantMessageItem)
        and event.item.id == "msg_after_structured_input"
        for event in events
    )


async def test_add_structured_input_treats_omitted_answers_as_skipped(
    make_server: MakeServer,
) -> None:
    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if input is not None:
            yield lesson_questions(thread, subject(), details())

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Plan a lesson"))
    thread = next(event.thread for event in events if isinstance(event, ThreadCreatedEvent))

    events = await submit_answers(server, thread.id, {"subject": ["Math"]})

    replaced_event = next(event for event in events if isinstance(event, ThreadItemReplacedEvent))
    assert isinstance(replaced_event.item, StructuredInputItem)
    subject_answer = replaced_event.item.inputs[0].answer
    assert subject_answer is not None
    assert subject_answer.values == ["Math"]
    details_answer = replaced_event.item.inputs[1].answer
    assert details_answer is not None
    assert details_answer.skipped


async def test_add_structured_input_ignores_unknown_answer_ids(make_server: MakeServer) -> None:
    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if input is not None:
            yield lesson_questions(thread, details())

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Plan a lesson"))
    thread = next(event.thread for event in events if isinstance(event, ThreadCreatedEvent))

    events = await submit_answers(
        server, thread.id, {"details": ["Please include group work."], "unknown": ["ignored"]}
    )

    replaced_event = next(event for event in events if isinstance(event, ThreadItemReplacedEvent))
    assert isinstance(replaced_event.item, StructuredInputItem)
    answer = replaced_event.item.inputs[0].answer
    assert answer is not None
    assert answer.values == ["Please include group work."]


async def test_add_structured_input_truncates_extra_single_choice_values(
    make_server: MakeServer,
) -> None:
    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        yield lesson_questions(thread, subject())

    server = make_server(responder)
    events = await server.process_streaming(create_thread("Plan a lesson"))
    thread = next(event.thread for event in events if isinstance(event, ThreadCreatedEvent))

    events = await submit_answers(server, thread.id, {"subject": ["Math", "Science"]})

    replaced_event = next(event for event in events if isinstance(event, ThreadItemReplacedEvent))
    assert isinstance(replaced_event.item, StructuredInputItem)
    answer = replaced_event.item.inputs[0].answer
    assert answer is not None
    assert answer.values == ["Math"]

    persisted_item = await server.store.load_item(
        thread.id,
        "si_1",
        server.context,
    )
    assert isinstance(persisted_item, StructuredInputItem)
    assert persisted_item.status == "answered"
    assert persisted_item.inputs[0].answer == answer


async def test_calls_action_sync(make_server: MakeServer) -> None:
    sync_actions = []

    def sync_action(
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: Any,
    ) -> SyncCustomActionResponse:
        sync_actions.append((action, sender))
        assert sender

        return SyncCustomActionResponse(
            updated_item=sender.model_copy(
                update={
                    "widget": Card(
                        children=[
                            Text(value="Email sent!"),
                        ]
                    )
                }
            )
        )

    server = make_server(widget_responder, sync_action_callback=sync_action)
    thread, widget_item = await show_widget(server)

    result = await server.process_non_streaming(
        ThreadsSyncCustomActionReq(
            params=ThreadCustomActionParams(
                thread_id=thread.id, item_id=widget_item.id, action=CREATE_USER
            )
        )
    )
    response = TypeAdapter(SyncCustomActionResponse).validate_json(result.json)

    assert sync_actions
    assert sync_actions[0] == (
        Action(type="create_user", payload={"user_id": "123"}),
        widget_item,
    )
    assert response.updated_item == widget_item.model_copy(
        update={"widget": Card(children=[Text(value="Email sent!")])}
    )


async def test_add_feedback(make_server: MakeServer, db: AsyncSession) -> None:
    called = []

    def handle_feedback(
        thread_id: str, item_ids: list[str], feedback: FeedbackKind, context: ChatContext
    ) -> None:
        called.append((thread_id, item_ids, feedback, context))

    async def responder(
        thread: ThreadMetadata,
        input: UserMessageItem | None,
        context: Any,
    ) -> AsyncIterator[ThreadStreamEvent]:
        yield assistant_message_done(thread, "assistant_msg_1", "Feedback received!")
        yield ThreadItemDoneEvent(
            item=WidgetItem(
                id="widget_1",
                type="widget",
                created_at=datetime.now(),
                widget=Card(children=[Text(key="text", value="Widget content")]),
                thread_id=thread.id,
            ),
        )

    server = make_server(responder, handle_feedback=handle_feedback)
    events = await server.process_streaming(create_thread("Test feedback"))
    thread = next(event.thread for event in events if event.type == "thread.created")

    await server.process_non_streaming(
        ItemsFeedbackReq(
            params=ItemFeedbackParams(
                thread_id=thread.id,
                item_ids=["assistant_msg_1"],
                kind="positive",
            )
        )
    )
    await server.process_non_streaming(
        ItemsFeedbackReq(
            params=ItemFeedbackParams(
                thread_id=thread.id,
                item_ids=["widget_1"],
                kind="negative",
            )
        )
    )

    assert len(called) == 2
    assert called[0][0] == thread.id
    assert called[0][1] == ["assistant_msg_1"]
    assert called[0][2] == "positive"

    assert called[1][0] == thread.id
    assert called[1][1] == ["widget_1"]
    assert called[1][2] == "negative"

    # Kithost's add_feedback (which the callback runs before) stores it on the items.
    stored = await db.execute(
        select(ChatItem.id, ChatItem.feedback).where(ChatItem.feedback.is_not(None))
    )
    expected = [("assistant_msg_1", "positive"), ("widget_1", "negative")]
    assert sorted(tuple(row) for row in stored) == expected


def assert_kithost_url(
    url: AnyUrl | None, server: SdkServer, attachment_id: str, purpose: Purpose
) -> None:
    """Kithost differs from upstream's in-memory attachment store: uploads and previews are
    Kithost's own URLs, signed for the context's end user (upstream asserts its store's
    ``https://example.com/{id}/upload``, ``PUT`` and a custom header)."""
    parts = urlsplit(str(url))
    public_key = server.context.widget.public_key
    assert parts.path == f"/v1/chatkit/{public_key}/attachments/{attachment_id}/{purpose}"
    [token] = parse_qs(parts.query)["token"]
    urls = server.store.urls
    assert urls.end_user(purpose, public_key, attachment_id, token) == server.context.end_user_id


async def test_create_file(make_server: MakeServer) -> None:
    file_name = "test-file-name"
    file_content_type = "text/plain"

    server = make_server()
    result = await server.process_non_streaming(
        AttachmentsCreateReq(
            params=AttachmentCreateParams(name=file_name, size=1024, mime_type=file_content_type)
        )
    )
    attachment = TypeAdapter[Attachment](Attachment).validate_json(result.json)

    # Verify response includes file
    assert attachment.id is not None
    assert attachment.mime_type == file_content_type
    assert attachment.name == file_name
    assert attachment.type == "file"
    assert attachment.upload_descriptor is not None
    assert_kithost_url(attachment.upload_descriptor.url, server, attachment.id, "upload")
    assert attachment.upload_descriptor.method == "POST"
    assert attachment.upload_descriptor.headers == {}
    stored = await server.store.load_attachment(attachment.id, server.context)

    # The `metadata` field is excluded from serialization by default but still stored server-side
    assert attachment.metadata is None
    # (Kithost's metadata: the size announced, which the upload may not exceed.)
    assert stored.metadata == {"size": 1024}


async def test_create_image_file(make_server: MakeServer) -> None:
    file_name = "test-file-name"
    file_content_type = "image/png"

    server = make_server()
    result = await server.process_non_streaming(
        AttachmentsCreateReq(
            params=AttachmentCreateParams(
                name=file_name,
                size=1024,
                mime_type=file_content_type,
            )
        )
    )
    attachment = TypeAdapter[Attachment](Attachment).validate_json(result.json)

    assert attachment.id is not None
    assert attachment.mime_type == file_content_type
    assert attachment.name == file_name
    assert attachment.type == "image"
    assert_kithost_url(attachment.preview_url, server, attachment.id, "preview")
    assert attachment.upload_descriptor is not None
    assert_kithost_url(attachment.upload_descriptor.url, server, attachment.id, "upload")
    assert attachment.upload_descriptor.method == "POST"
    assert attachment.upload_descriptor.headers == {}

    await server.store.load_attachment(attachment.id, server.context)


async def test_user_message_attachment_metadata_not_serialized(make_server: MakeServer) -> None:
    attachment = FileAttachment(
        id="file_with_metadata",
        type="file",
        mime_type="text/plain",
        name="test.txt",
        metadata={"source": "test"},
    )

    server = make_server()
    await server.store.save_attachment(attachment, server.context)
    events = await server.process_streaming(
        create_thread("Message with file", attachments=[attachment.id])
    )
    thread = next(event.thread for event in events if event.type == "thread.created")

    items = await server.list_items(thread.id)
    user_items = [item for item in items.data if item.type == "user_message"]
    assert user_items
    attachments = user_items[0].attachments
    assert attachments
    assert all(att.metadata is None for att in attachments)


async def test_user_message_attachment_thread_id_persisted_on_thread_create(
    make_server: MakeServer,
) -> None:
    attachment = FileAttachment(
        id="file_thread_id_on_create",
        type="file",
        mime_type="text/plain",
        name="test.txt",
        thread_id=None,
    )

    server = make_server()
    # Attachment exists before a thread exists, so it may not have a thread_id yet.
    await server.store.save_attachment(attachment, server.context)

    events = await server.process_streaming(
        create_thread("Message with file", attachments=[attachment.id])
    )
    thread = next(e.thread for e in events if e.type == "thread.created")

    # After the user message is saved, the attachment record should be updated
    # to reflect its thread association.
    stored = await server.store.load_attachment(attachment.id, server.context)
    assert stored.thread_id == thread.id


async def test_user_message_attachment_thread_id_persisted_on_add_user_message(
    make_server: MakeServer,
) -> None:
    server = make_server()
    # Create a thread first.
    events = await server.process_streaming(create_thread("Start"))
    thread = next(e.thread for e in events if e.type == "thread.created")

    attachment = FileAttachment(
        id="file_thread_id_on_add",
        type="file",
        mime_type="text/plain",
        name="test.txt",
        thread_id=None,
    )
    await server.store.save_attachment(attachment, server.context)

    # Attach the pre-created attachment to a message in an existing thread.
    await server.process_streaming(
        add_user_message(thread.id, "Second", attachments=[attachment.id])
    )

    stored = await server.store.load_attachment(attachment.id, server.context)
    assert stored.thread_id == thread.id


async def test_delete_file(make_server: MakeServer) -> None:
    # Upstream deletes from its in-memory store; here the attachment is created and uploaded
    # through Kithost's attachment store first, and its record and bytes must both go.
    server = make_server()
    result = await server.process_non_streaming(
        AttachmentsCreateReq(
            params=AttachmentCreateParams(name="test.txt", size=5, mime_type="text/plain")
        )
    )
    attachment_id = TypeAdapter[Attachment](Attachment).validate_json(result.json).id
    uploaded = io.BytesIO(b"hello")
    await server.attachment_store.upload(attachment_id, uploaded, "text/plain", server.context)
    assert await server.attachment_store.content(attachment_id, server.context) == (
        b"hello",
        "text/plain",
    )

    await server.process_non_streaming(
        AttachmentsDeleteReq(params=AttachmentDeleteParams(attachment_id=attachment_id))
    )
    with pytest.raises(NotFoundError):
        await server.store.load_attachment(attachment_id, server.context)
    with pytest.raises(NotFoundError):
        await server.attachment_store.content(attachment_id, server.context)
