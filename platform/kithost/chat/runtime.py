"""What the chat routes share per app (so per API process; a part of ``app.state``):
storage, URL signing, and the factories of the per-request server and stores."""

from __future__ import annotations

from dataclasses import dataclass

from chatkit.types import ChatKitReq, ThreadsAddUserMessageReq, ThreadsCreateReq, is_streaming_req

from kithost.analytics.facts import FactBuffer
from kithost.chat import agent
from kithost.chat.attachments import AttachmentUrls
from kithost.chat.auth import VerifiedTokens
from kithost.chat.server import ChatServer
from kithost.chat.store import SqlAttachmentStore, SqlStore
from kithost.db import Sessionmaker
from kithost.kit.crypto import SecretBox
from kithost.kit.outbound import Resolver
from kithost.kit.upstream import ModelClients
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
    )


def runtime(state: AppState) -> Runtime:
    """The app's runtime (``app.state``)."""
    return state.part(Runtime)
