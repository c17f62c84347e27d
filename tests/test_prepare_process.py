"""What a process prepares once before it answers (``chat.runtime.prepare_process``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from fastapi import FastAPI

from kithost import app as app_module
from kithost.app import create_app
from kithost.settings import Settings

CHECK = textwrap.dedent(
    """
    import chatkit.types
    from agents.tracing import get_trace_provider
    from agents.tracing.traces import NoOpTrace
    from openai.types.responses import ResponseCreatedEvent
    from pydantic import BaseModel

    from kithost.chat.runtime import prepare_process
    from kithost.kit.upstream import _STREAM_EVENTS

    def chatkit_models():
        return [
            m for m in vars(chatkit.types).values()
            if isinstance(m, type) and issubclass(m, BaseModel)
            and m.__module__ == "chatkit.types"
        ]

    assert not ResponseCreatedEvent.__pydantic_complete__  # built on first use
    assert not all(m.__pydantic_complete__ for m in chatkit_models())
    prepare_process()
    assert all(event.__pydantic_complete__ for event in _STREAM_EVENTS.values())
    assert all(m.__pydantic_complete__ for m in chatkit_models())
    assert isinstance(get_trace_provider().create_trace("answer"), NoOpTrace)
    print("prepared")
    """
)


def test_a_process_builds_the_answers_models_and_turns_tracing_off_before_answering() -> None:
    # A fresh interpreter: in this one, earlier tests have built the models already.
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "prepared"


async def test_the_apps_start_up_prepares_the_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(app_module, "prepare_process", lambda: calls.append("prepared"))
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        assert calls == ["prepared"]
