"""Knowledge base tests: the app calls the fake OpenAI server (its Files and Vector
Stores APIs) and keeps the tasks it sends (``tasks``) for the test to run."""

from __future__ import annotations

from tests.knowledge.helpers import app, tasks

__all__ = ["app", "tasks"]
