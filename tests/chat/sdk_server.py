"""What the ``openai-chatkit`` SDK's server tests, ported to Kithost, run on: Kithost's
``ChatServer`` answering from a script instead of the agent.

Upstream (openai/chatkit-python v1.6.5, ``tests/test_chatkit_server.py``, Copyright 2025
OpenAI, Apache License 2.0: tests/chat/LICENSE-openai-chatkit.txt) tests the SDK's generic
``ChatKitServer`` through a subclass whose ``respond``, ``action``, ``sync_action`` and
``add_feedback`` call the test's callbacks. Here the subclass is of Kithost's ``ChatServer``
instead, so what runs is Kithost's: its ``process`` (the user's message written behind the
answer, settled before the stream ends), its stream cancellation (shielded writes), its
``add_feedback`` (stored on the items: the callback is called first), and ``SqlStore`` /
``SqlAttachmentStore``, built per request as ``Runtime.server`` builds them. Scripted are
only the answers (``respond``) and the widget action handlers, as upstream scripts them: the
agent's own answers and Kithost's ``action`` (a hidden note, then the agent; ``sync_action``
it does not implement) are tested by test_responses.py and test_protocol.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chatkit.actions import Action
from chatkit.server import NonStreamingResult, StreamingResult
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    ChatKitReq,
    FeedbackKind,
    InferenceOptions,
    ItemsListParams,
    ItemsListReq,
    Page,
    SyncCustomActionResponse,
    ThreadAddUserMessageParams,
    ThreadCreateParams,
    ThreadItem,
    ThreadItemDoneEvent,
    ThreadListParams,
    ThreadMetadata,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsListReq,
    ThreadStreamEvent,
    UserMessageInput,
    UserMessageItem,
    UserMessageTextContent,
    WidgetItem,
    is_streaming_req,
)
from fastapi import FastAPI
from pydantic import TypeAdapter

from kithost.chat import agent
from kithost.chat.context import ChatContext
from kithost.chat.runtime import runtime
from kithost.chat.server import ChatServer
from kithost.chat.store import SqlAttachmentStore, SqlStore
from kithost.kit.crypto import SecretBox
from kithost.kit.upstream import ModelClients
from kithost.settings import Settings
from tests.conftest import state_of

Responder = Callable[
    [ThreadMetadata, UserMessageItem | None, ChatContext], AsyncIterator[ThreadStreamEvent]
]
ActionCallback = Callable[
    [ThreadMetadata, Action[str, Any], WidgetItem | None, ChatContext],
    AsyncIterator[ThreadStreamEvent],
]
SyncActionCallback = Callable[
    [ThreadMetadata, Action[str, Any], WidgetItem | None, ChatContext], SyncCustomActionResponse
]
FeedbackCallback = Callable[[str, list[str], FeedbackKind, ChatContext], None]

_EVENT: TypeAdapter[ThreadStreamEvent] = TypeAdapter(ThreadStreamEvent)
_REQUEST: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)
_ITEMS: TypeAdapter[Page[ThreadItem]] = TypeAdapter(Page[ThreadItem])
_THREADS: TypeAdapter[Page[ThreadMetadata]] = TypeAdapter(Page[ThreadMetadata])


@dataclass(frozen=True)
class Script:
    responder: Responder | None = None
    handle_feedback: FeedbackCallback | None = None
    action_callback: ActionCallback | None = None
    sync_action_callback: SyncActionCallback | None = None


class ScriptedServer(ChatServer):
    """Upstream's ``TestChatKitServer``, as a ``ChatServer``."""

    def __init__(
        self,
        store: SqlStore,
        attachment_store: SqlAttachmentStore,
        *,
        script: Script,
        settings: Settings,
        box: SecretBox,
        models: ModelClients,
        new_message: bool,
    ) -> None:
        super().__init__(
            store,
            attachment_store,
            settings=settings,
            box=box,
            models=models,
            new_message=new_message,
        )
        self.script = script

    def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: ChatContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if self.script.responder is None:
            return _nothing()
        return self.script.responder(thread, input_user_message, context)

    def action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: ChatContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if self.script.action_callback is None:
            raise ValueError("action_callback not wired up")
        return self.script.action_callback(thread, action, sender, context)

    async def sync_action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: ChatContext,
    ) -> SyncCustomActionResponse:
        if self.script.sync_action_callback is None:
            raise ValueError("sync_action_callback not wired up")
        return self.script.sync_action_callback(thread, action, sender, context)

    async def add_feedback(
        self, thread_id: str, item_ids: list[str], feedback: FeedbackKind, context: ChatContext
    ) -> None:
        if self.script.handle_feedback is not None:
            self.script.handle_feedback(thread_id, item_ids, feedback, context)
        await super().add_feedback(thread_id, item_ids, feedback, context)


async def _nothing() -> AsyncIterator[ThreadStreamEvent]:
    return
    yield


@dataclass
class SdkServer:
    """Upstream's server object: each request is served by a new ``ScriptedServer`` (and
    store), as Kithost serves requests; ``store`` is a new store, as the next request's."""

    app: FastAPI
    context: ChatContext
    """Upstream's ``DEFAULT_CONTEXT``."""
    script: Script
    store_type: type[SqlStore] = SqlStore

    def new_store(self, *, read_ahead: int = 0) -> SqlStore:
        parts = runtime(state_of(self.app))
        return self.store_type(
            parts.sessionmaker, parts.storage, parts.urls, parts.facts, read_ahead=read_ahead
        )

    @property
    def store(self) -> SqlStore:
        return self.new_store()

    @property
    def attachment_store(self) -> SqlAttachmentStore:
        return SqlAttachmentStore(self.store, runtime(state_of(self.app)).settings)

    def server(self, request: ChatKitReq) -> ScriptedServer:
        parts = runtime(state_of(self.app))
        read_ahead = agent.HISTORY_ITEMS if is_streaming_req(request) else 0
        store = self.new_store(read_ahead=read_ahead)
        return ScriptedServer(
            store,
            SqlAttachmentStore(store, parts.settings),
            script=self.script,
            settings=parts.settings,
            box=parts.box,
            models=parts.models,
            new_message=isinstance(request, ThreadsCreateReq | ThreadsAddUserMessageReq),
        )

    async def process(
        self, request: str, context: ChatContext | None = None
    ) -> StreamingResult | NonStreamingResult:
        """A request as JSON, as upstream's tests (and Kithost's endpoint) pass it."""
        server = self.server(_REQUEST.validate_json(request))
        return await server.process(request, context or self.context)

    async def process_streaming(
        self, request: ChatKitReq, context: ChatContext | None = None
    ) -> list[ThreadStreamEvent]:
        result = await self.process(request.model_dump_json(), context)
        assert isinstance(result, StreamingResult)
        return await decode_streaming_result(result)

    async def create_threads(self, count: int) -> None:
        """``count`` threads: "Thread 0", "Thread 1", … (upstream's thread listing tests)."""
        for i in range(count):
            await self.process_streaming(create_thread(f"Thread {i}"))

    async def list_threads(self, **params: Any) -> Page[ThreadMetadata]:
        """``threads.list``, as upstream's tests decode it."""
        result = await self.process_non_streaming(ThreadsListReq(params=ThreadListParams(**params)))
        return _THREADS.validate_json(result.json)

    async def list_items(self, thread_id: str, after: str | None = None) -> Page[ThreadItem]:
        """``items.list`` (default page size and order), as upstream's tests decode it."""
        result = await self.process_non_streaming(
            ItemsListReq(params=ItemsListParams(thread_id=thread_id, after=after))
        )
        return _ITEMS.validate_json(result.json)

    async def process_non_streaming(
        self, request: ChatKitReq, context: ChatContext | None = None
    ) -> NonStreamingResult:
        result = await self.process(request.model_dump_json(), context)
        assert isinstance(result, NonStreamingResult)
        return result


MakeServer = Callable[..., SdkServer]
"""The ``make_server`` fixture (tests/chat/conftest.py)."""


def create_thread(text: str, **input: Any) -> ThreadsCreateReq:
    """``threads.create`` with a text message: upstream's tests spell the request out in full
    each time; ``input`` sets other fields of the message (attachments, inference options)."""
    return ThreadsCreateReq(params=ThreadCreateParams(input=user_input(text, **input)))


def add_user_message(thread_id: str, text: str, **input: Any) -> ThreadsAddUserMessageReq:
    """``threads.add_user_message`` with a text message (as :func:`create_thread`)."""
    return ThreadsAddUserMessageReq(
        params=ThreadAddUserMessageParams(thread_id=thread_id, input=user_input(text, **input))
    )


def user_input(text: str, **fields: Any) -> UserMessageInput:
    defaults: dict[str, Any] = {"attachments": [], "inference_options": InferenceOptions()}
    return UserMessageInput(content=[UserMessageTextContent(text=text)], **{**defaults, **fields})


def assistant_message_done(thread: ThreadMetadata, item_id: str, text: str) -> ThreadItemDoneEvent:
    """An assistant message with ``text``, done, made now: what most of upstream's
    responders yield, spelled out in full there."""
    return ThreadItemDoneEvent(
        item=AssistantMessageItem(
            id=item_id,
            content=[AssistantMessageContent(text=text)],
            created_at=datetime.now(),
            thread_id=thread.id,
        )
    )


def user_message_done(thread: ThreadMetadata, item_id: str, text: str) -> ThreadItemDoneEvent:
    """A user message with ``text``, done, made now (as :func:`assistant_message_done`)."""
    return ThreadItemDoneEvent(
        item=UserMessageItem(
            id=item_id,
            content=[UserMessageTextContent(text=text)],
            attachments=[],
            inference_options=InferenceOptions(),
            thread_id=thread.id,
            created_at=datetime.now(),
        )
    )


def decode_event(event: bytes) -> ThreadStreamEvent:
    return _EVENT.validate_json(event.split(b"data: ")[1])


async def decode_streaming_result(streaming_result: StreamingResult) -> list[ThreadStreamEvent]:
    return [decode_event(event) async for event in streaming_result.json_events]
