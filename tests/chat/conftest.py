"""The chat tests talk to a real uvicorn server on loopback (``http``: streaming and
disconnects are real), which serves each test's app (its sessions in the test's
transaction); the model is the fake OpenAI server."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.chat.helpers import SentTasks


@pytest.fixture(autouse=True)
def sent_tasks(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    """The Celery tasks the app sends (after commits), recorded instead of sent (no worker
    consumes the analytics facts in these tests)."""
    sent = SentTasks(app.state.facts)
    monkeypatch.setattr(app.state.celery, "send_task", sent.record)
    return sent
