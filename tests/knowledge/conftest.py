"""Knowledge base tests: the app calls the fake OpenAI server (its Files and Vector
Stores APIs) and keeps the tasks it sends (``tasks``) for the test to run."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from kithost.settings import Settings
from tests.conftest import create_test_app
from tests.fakes.openai_server import FakeOpenAI
from tests.workers import RecordedTasks


@pytest.fixture
def tasks() -> RecordedTasks:
    return RecordedTasks()


@pytest.fixture
def app(
    settings: Settings,
    connection: AsyncConnection,
    fake_openai: FakeOpenAI,
    tasks: RecordedTasks,
    monkeypatch: pytest.MonkeyPatch,
) -> FastAPI:
    app = create_test_app(settings, connection, openai_base_url=fake_openai.base_url)
    monkeypatch.setattr(app.state.celery, "send_task", tasks.record)
    return app
