"""What the chat routes share per app (so per API process; a part of ``app.state``):
storage, URL signing, the answers in progress (``answers.OpenAnswers``), and the factories
of the per-request server and stores."""

from __future__ import annotations

from dataclasses import dataclass

import chatkit.types
from agents import set_trace_provider
from agents.tracing.provider import DefaultTraceProvider
from chatkit.types import ChatKitReq, ThreadsAddUserMessageReq, ThreadsCreateReq, is_streaming_req
from pydantic import BaseModel

from kithost.analytics.facts import FactBuffer
from kithost.chat import agent
from kithost.chat.answers import OpenAnswers
from kithost.chat.attachments import AttachmentUrls
from kithost.chat.auth import VerifiedTokens
from kithost.chat.server import ChatServer
from kithost.chat.store import SqlAttachmentStore, SqlStore
from kithost.db import Sessionmaker
from kithost.kit.crypto import SecretBox
from kithost.kit.outbound import Resolver
from kithost.kit.upstream import ModelClients, complete_stream_events
from kithost.settings import Settings
from kithost.state import AppState
from kithost.storage import BlobStorage, storage_for


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    box: SecretBox
    sessionmaker: Sessionmaker
    storage: BlobStorage
    urls: AttachmentUrls
    tokens: VerifiedTokens
    facts: FactBuffer
    models: ModelClients
    resolver: Resolver
    """How names in tenant-chosen tool URLs resolve (``AppState.outbound_resolver``)."""
    answers: OpenAnswers
    """The answers this process is streaming: at most ``KITHOST_MAX_OPEN_ANSWERS``."""

    def attachment_store(self, *, read_ahead: int = 0) -> SqlAttachmentStore:
        store = SqlStore(
            self.sessionmaker, self.storage, self.urls, self.facts, read_ahead=read_ahead
        )
        return SqlAttachmentStore(store, self.settings)

    def server(self, request: ChatKitReq) -> ChatServer:
        """The server for one request; a streamed one reads the history with its thread."""
        streaming = is_streaming_req(request)
        attachments = self.attachment_store(read_ahead=agent.HISTORY_ITEMS if streaming else 0)
        return ChatServer(
            attachments.store,
            attachments,
            settings=self.settings,
            box=self.box,
            models=self.models,
            new_message=isinstance(request, ThreadsCreateReq | ThreadsAddUserMessageReq),
            resolver=self.resolver,
        )

    async def aclose(self) -> None:
        await self.answers.aclose()


def create_runtime(state: AppState) -> Runtime:
    """The app's runtime (``create_app`` adds it to ``app.state`` after the parts it uses:
    ``FactBuffer``, ``ModelClients``)."""
    settings = state.settings
    return Runtime(
        settings=settings,
        box=state.secret_box,
        sessionmaker=state.sessionmaker,
        storage=storage_for(settings),
        urls=AttachmentUrls(settings),
        tokens=VerifiedTokens(settings, state.sessionmaker),
        facts=state.part(FactBuffer),
        models=state.part(ModelClients),
        resolver=state.outbound_resolver,
        answers=OpenAnswers(state.sessionmaker, settings.max_open_answers),
    )


def runtime(state: AppState) -> Runtime:
    """The app's runtime (``app.state``)."""
    return state.part(Runtime)


def prepare_process() -> None:
    """What a process does once before it answers (the app's start-up, before it takes
    requests; ~0.3 s):

    - build the validators of the models an answer is read and written as, openai's
      Responses stream events and ChatKit's types: both SDKs leave them to their first use,
      which held the event loop ~150 ms during a process's first answer (py-spy: its first
      token after 200 ms, the next answers' after 5; every other request waited too);
    - give the Agents SDK a trace provider that is off and has no processor: its default
      one exports to OpenAI's trace backend (with ``OPENAI_API_KEY``, if the environment
      has one), and creating it built an HTTP client during the first answer (~25 ms).
      Answers run with tracing disabled as well (``ChatServer``).
    """
    complete_stream_events()
    for model in vars(chatkit.types).values():
        if (
            isinstance(model, type)
            and issubclass(model, BaseModel)
            and model.__module__ == chatkit.types.__name__
        ):
            model.model_rebuild()
    untraced = DefaultTraceProvider()
    untraced.set_disabled(True)
    set_trace_provider(untraced)
