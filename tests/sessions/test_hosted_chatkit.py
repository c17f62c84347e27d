"""Hosted sessions against the fake OpenAI server, through the real ``openai`` client."""

from __future__ import annotations

import pytest

from kithost.errors import BadGateway, KithostError, ServiceUnavailable
from kithost.sessions.hosted_chatkit import (
    HostedChatKitFailed,
    HostedChatKitSession,
    create_chatkit_session,
)
from kithost.widgets.config import Hosted
from tests.fakes.openai_server import FakeOpenAI

HOSTED = Hosted.model_validate(
    {
        "workflow_id": "wf_abc123",
        "version": "3",
        "state_variables": ["plan"],
        "chatkit_configuration": {"file_upload": {"enabled": True, "max_files": 2}},
        "expires_after_seconds": 900,
        "max_requests_per_minute": 20,
    }
)


async def _create(
    fake: FakeOpenAI, *, api_key: str | None = None, timeout_seconds: float = 5
) -> HostedChatKitSession:
    return await create_chatkit_session(
        api_key=api_key or fake.api_key,
        base_url=fake.base_url,
        timeout_seconds=timeout_seconds,
        hosted=HOSTED,
        user="u:42",
        state_variables={"plan": "pro"},
    )


async def test_a_session_is_created_with_the_widget_settings(fake_openai: FakeOpenAI) -> None:
    session = await _create(fake_openai)
    [request] = fake_openai.requests
    assert request.path == "/v1/chatkit/sessions"
    assert request.headers["openai-beta"] == "chatkit_beta=v1"
    assert request.json == {
        "user": "u:42",
        "workflow": {"id": "wf_abc123", "version": "3", "state_variables": {"plan": "pro"}},
        "chatkit_configuration": {"file_upload": {"enabled": True, "max_files": 2}},
        "expires_after": {"anchor": "created_at", "seconds": 900},
        "rate_limits": {"max_requests_per_1_minute": 20},
    }
    [stored] = fake_openai.sessions.values()
    assert session == HostedChatKitSession(
        stored["id"], stored["client_secret"], stored["expires_at"]
    )


@pytest.mark.parametrize(
    ("status", "error", "code", "http"),
    [
        (500, BadGateway, "upstream_unavailable", 502),
        (503, BadGateway, "upstream_unavailable", 502),
        (429, ServiceUnavailable, "upstream_unavailable", 503),
        (401, BadGateway, "upstream_rejected", 502),
        (404, BadGateway, "hosted_workflow_unavailable", 502),  # gone with Agent Builder
        (400, BadGateway, "upstream_rejected", 502),
    ],
)
async def test_upstream_errors_map_to_clear_problems(
    fake_openai: FakeOpenAI, status: int, error: type[KithostError], code: str, http: int
) -> None:
    """The visitor's problem says nothing of OpenAI's words; the tenant's reason does."""
    fake_openai.fail_next(status, "Workflow wf_abc123 not found in this project.")
    with pytest.raises(HostedChatKitFailed) as raised:
        await _create(fake_openai)
    problem = raised.value.problem
    assert (type(problem), problem.code, problem.status) == (error, code, http)
    assert "wf_abc123" not in str(problem.detail)
    assert "Workflow wf_abc123 not found" in raised.value.reason
    if code == "upstream_unavailable":
        assert problem.headers["Retry-After"] == "5"


async def test_a_wrong_key_is_rejected_without_the_key(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(HostedChatKitFailed) as raised:
        await _create(fake_openai, api_key="sk-wrong-key-1234")
    assert raised.value.problem.code == "upstream_rejected"
    assert "key" not in str(raised.value.problem.detail)
    assert raised.value.reason.startswith(
        "OpenAI refused the session: Incorrect API key provided: [key]"
    )
    assert "1234" not in raised.value.reason


async def test_a_slow_upstream_is_unavailable(fake_openai: FakeOpenAI) -> None:
    fake_openai.delay_seconds = 2
    with pytest.raises(HostedChatKitFailed) as raised:
        await _create(fake_openai, timeout_seconds=0.5)
    assert raised.value.problem.code == "upstream_unavailable"
    assert raised.value.problem.headers["Retry-After"] == "5"


async def test_an_unreachable_upstream_is_unavailable() -> None:
    with pytest.raises(HostedChatKitFailed) as raised:
        await create_chatkit_session(
            api_key="sk-x",
            base_url="http://127.0.0.1:1/v1",
            timeout_seconds=2,
            hosted=HOSTED,
            user="u:1",
            state_variables={},
        )
    assert isinstance(raised.value.problem, ServiceUnavailable)
