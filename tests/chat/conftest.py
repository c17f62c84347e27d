"""The chat tests talk to a real uvicorn server on loopback (``http``: streaming and
disconnects are real), which serves each test's app (its sessions in the test's
transaction); the model is the fake OpenAI server."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.facts import FactBuffer
from kithost.chat.store import SqlStore
from tests.chat.helpers import SentTasks, chat_config, context_of
from tests.chat.sdk_server import (
    ActionCallback,
    FeedbackCallback,
    MakeServer,
    Responder,
    Script,
    SdkServer,
    SyncActionCallback,
)
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture(autouse=True)
def sent_tasks(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    """The Celery tasks the app sends (after commits), recorded instead of sent (no worker
    consumes the analytics facts in these tests)."""
    sent = SentTasks(app.state.part(FactBuffer))
    monkeypatch.setattr(app.state.celery, "send_task", sent.record)
    return sent


@pytest.fixture
async def make_server(app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI) -> MakeServer:
    """Upstream's ``make_server`` for the SDK's ported server tests (``sdk_server``): its
    default context is an end user of a new widget that takes attachments."""
    attachments = {"enabled": True, "maxSize": {"*": 2048}}
    config = chat_config(fake_openai, chatkit={"composer": {"attachments": attachments}})
    context = await context_of(db, app, fake_openai, config=config)

    def make(
        responder: Responder | None = None,
        handle_feedback: FeedbackCallback | None = None,
        action_callback: ActionCallback | None = None,
        sync_action_callback: SyncActionCallback | None = None,
        store_type: type[SqlStore] = SqlStore,
    ) -> SdkServer:
        script = Script(responder, handle_feedback, action_callback, sync_action_callback)
        return SdkServer(app, context, script, store_type)

    return make
