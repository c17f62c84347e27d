"""The fake OpenAI server, driven only through the real `openai` client and `openai-agents`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import openai
import pytest
import pytest_asyncio
from agents import (
    Agent,
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    set_tracing_disabled,
)
from openai import AsyncOpenAI
from openai.types.beta.chatkit import ChatSession
from openai.types.responses import ResponseCompletedEvent, ResponseTextDeltaEvent

from tests.fakes.openai_server import FakeOpenAI, fake_openai

__all__ = ["fake_openai"]  # the fixture, also re-exported by conftest.py

pytestmark = pytest.mark.asyncio

REPLY = "The quick brown fox jumps over the lazy dog."


@pytest_asyncio.fixture
async def openai_client(fake_openai: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(
        api_key=fake_openai.api_key, base_url=fake_openai.base_url, max_retries=0
    ) as client:
        yield client


async def test_chatkit_session_create_returns_typed_session(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    session = await openai_client.beta.chatkit.sessions.create(
        user="user-123", workflow={"id": "wf_abc", "state_variables": {"plan": "pro"}}
    )

    assert isinstance(session, ChatSession)
    assert session.id.startswith("cksess_")
    assert session.client_secret.startswith("ek_")
    assert session.status == "active"
    assert session.user == "user-123"
    assert session.workflow.id == "wf_abc"
    assert session.workflow.state_variables == {"plan": "pro"}
    assert session.workflow.tracing.enabled is True
    assert session.chatkit_configuration.file_upload.enabled is False
    assert session.chatkit_configuration.history.recent_threads is None
    assert session.rate_limits.max_requests_per_1_minute == 10
    assert session.max_requests_per_1_minute == 10
    assert abs(session.expires_at - (time.time() + 600)) < 5

    (request,) = fake_openai.requests
    assert request.method == "POST"
    assert request.path == "/v1/chatkit/sessions"
    assert request.headers["openai-beta"] == "chatkit_beta=v1"
    assert request.headers["authorization"] == f"Bearer {fake_openai.api_key}"
    assert request.json == {
        "user": "user-123",
        "workflow": {"id": "wf_abc", "state_variables": {"plan": "pro"}},
    }


async def test_chatkit_session_options_and_cancel(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    session = await openai_client.beta.chatkit.sessions.create(
        user="u",
        workflow={"id": "wf_1", "version": "3", "tracing": {"enabled": False}},
        expires_after={"anchor": "created_at", "seconds": 60},
        rate_limits={"max_requests_per_1_minute": 42},
        chatkit_configuration={"file_upload": {"enabled": True, "max_files": 2}},
    )
    assert session.workflow.version == "3"
    assert session.workflow.tracing.enabled is False
    assert session.rate_limits.max_requests_per_1_minute == 42
    assert session.chatkit_configuration.file_upload.enabled is True
    assert session.chatkit_configuration.file_upload.max_files == 2
    assert session.chatkit_configuration.file_upload.max_file_size == 512
    assert session.chatkit_configuration.automatic_thread_titling.enabled is True
    assert abs(session.expires_at - (time.time() + 60)) < 5

    cancelled = await openai_client.beta.chatkit.sessions.cancel(session.id)
    assert cancelled.id == session.id
    assert cancelled.status == "cancelled"
    assert fake_openai.sessions[session.id]["status"] == "cancelled"

    other = await openai_client.beta.chatkit.sessions.create(user="u", workflow={"id": "wf_1"})
    assert other.client_secret != session.client_secret
    assert other.status == "active"
    with pytest.raises(openai.NotFoundError):
        await openai_client.beta.chatkit.sessions.cancel("cksess_missing")


async def test_chatkit_session_requires_beta_header_and_fields(openai_client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as missing_header:
        await openai_client.beta.chatkit.sessions.create(
            user="u", workflow={"id": "wf"}, extra_headers={"OpenAI-Beta": "assistants=v2"}
        )
    assert "chatkit_beta=v1" in missing_header.value.message

    with pytest.raises(openai.BadRequestError) as missing_workflow_id:
        await openai_client.beta.chatkit.sessions.create(
            user="u",
            workflow={"version": "1"},  # type: ignore[typeddict-item]
        )
    assert missing_workflow_id.value.param == "workflow.id"
    assert missing_workflow_id.value.code == "missing_required_parameter"

    with pytest.raises(openai.BadRequestError) as missing_user:
        await openai_client.beta.chatkit.sessions.create(
            user="u", workflow={"id": "wf"}, extra_body={"user": None}
        )
    assert missing_user.value.param == "user"


async def test_wrong_api_key_raises_authentication_error(fake_openai: FakeOpenAI) -> None:
    async with AsyncOpenAI(
        api_key="sk-wrong-key-0000", base_url=fake_openai.base_url, max_retries=0
    ) as client:
        with pytest.raises(openai.AuthenticationError) as excinfo:
            await client.beta.chatkit.sessions.create(user="u", workflow={"id": "wf"})
    assert excinfo.value.status_code == 401
    assert excinfo.value.code == "invalid_api_key"
    assert excinfo.value.type == "invalid_request_error"
    body = excinfo.value.body
    assert isinstance(body, dict)
    assert set(body) == {"message", "type", "param", "code"}
    assert body["param"] is None
    assert body["message"].startswith("Incorrect API key provided")
    assert "sk-wrong-key-0000" not in body["message"]  # the key is masked, as OpenAI does
    assert fake_openai.sessions == {}


async def test_fail_next_scripts_errors_in_order(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake_openai.fail_next(503, "The engine is currently overloaded.", "overloaded")
    fake_openai.fail_next(429, "Rate limit reached.", "rate_limit_exceeded")

    with pytest.raises(openai.InternalServerError) as unavailable:
        await openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert unavailable.value.status_code == 503
    assert unavailable.value.message == "Error code: 503 - The engine is currently overloaded."
    assert unavailable.value.code == "overloaded"
    assert unavailable.value.type == "server_error"

    with pytest.raises(openai.RateLimitError) as limited:
        await openai_client.beta.chatkit.sessions.create(user="u", workflow={"id": "wf"})
    assert limited.value.code == "rate_limit_exceeded"

    # The queue is drained: the next call succeeds, and every attempt was recorded.
    completion = await openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == fake_openai.reply_text
    assert [r.path for r in fake_openai.requests] == [
        "/v1/chat/completions",
        "/v1/chatkit/sessions",
        "/v1/chat/completions",
    ]


async def test_a_failure_for_one_method_waits_for_a_request_with_it(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake_openai.fail_next(500, method="DELETE")
    made = await openai_client.files.create(file=("a.txt", b"A"), purpose="assistants")

    with pytest.raises(openai.InternalServerError):
        await openai_client.files.delete(made.id)
    assert (await openai_client.files.delete(made.id)).deleted


async def test_a_held_answer_waits_for_release_with_its_work_done(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake_openai.hold_answer("POST", "/v1/files")
    creating = asyncio.create_task(
        openai_client.files.create(file=("a.txt", b"A"), purpose="assistants")
    )
    await asyncio.to_thread(fake_openai.holding.wait, 10)
    [file_id] = fake_openai.vector_stores.files
    assert not creating.done()

    fake_openai.release()
    assert (await creating).id == file_id
    assert not fake_openai.holding.is_set()


async def test_unknown_route_is_openai_shaped_404(openai_client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as excinfo:
        await openai_client.models.list()
    assert excinfo.value.body == {
        "message": "Invalid URL (GET /v1/models)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


async def test_chat_completion_non_streaming(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake_openai.reply_text = REPLY
    completion = await openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say the pangram."}]
    )
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert fake_openai.requests[0].json["messages"][0]["content"] == "Say the pangram."


async def test_chat_completion_streaming(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake_openai.reply_text = REPLY
    stream = await openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    deltas: list[str] = []
    finish_reasons: list[str] = []
    usage_chunks = 0
    async for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            if choice.delta.content:
                deltas.append(choice.delta.content)
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
        if chunk.usage is not None:
            usage_chunks += 1
            assert chunk.choices == []
            assert chunk.usage.completion_tokens == len(deltas)

    assert "".join(deltas) == REPLY
    assert len(deltas) > 3
    assert finish_reasons == ["stop"]
    assert usage_chunks == 1


async def test_chat_completion_stream_helper(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    async with openai_client.chat.completions.stream(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == fake_openai.reply_text
    assert final.usage is None  # usage is only streamed when include_usage is requested


async def test_responses_non_streaming(fake_openai: FakeOpenAI, openai_client: AsyncOpenAI) -> None:
    fake_openai.reply_text = REPLY
    response = await openai_client.responses.create(
        model="gpt-4.1", input="hello", instructions="Be."
    )
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == REPLY
    assert response.instructions == "Be."
    assert response.usage is not None
    assert response.usage.output_tokens > 0


async def test_responses_streaming_event_sequence(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI
) -> None:
    fake_openai.reply_text = REPLY
    stream = await openai_client.responses.create(model="gpt-4.1", input="hello", stream=True)
    events = [event async for event in stream]

    types = [event.type for event in events]
    deltas = [e.delta for e in events if isinstance(e, ResponseTextDeltaEvent)]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[4 : 4 + len(deltas)] == ["response.output_text.delta"] * len(deltas)
    assert types[4 + len(deltas) :] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert len(deltas) > 3
    assert "".join(deltas) == REPLY
    assert [event.sequence_number for event in events] == list(range(len(events)))
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    assert completed.response.output_text == REPLY
    assert completed.response.usage is not None
    assert completed.response.usage.total_tokens > 0


async def test_responses_stream_helper(fake_openai: FakeOpenAI, openai_client: AsyncOpenAI) -> None:
    fake_openai.reply_text = REPLY
    text_deltas: list[str] = []
    async with openai_client.responses.stream(model="gpt-4.1", input="hello") as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                text_deltas.append(event.delta)
        final = await stream.get_final_response()
    assert "".join(text_deltas) == REPLY
    assert final.status == "completed"
    assert final.output_text == REPLY
    assert final.usage is not None
    assert final.usage.output_tokens == len(text_deltas)


@pytest.mark.parametrize(
    ("api", "expected_path"),
    [("responses", "/v1/responses"), ("chat_completions", "/v1/chat/completions")],
)
async def test_agents_sdk_run_streamed(
    fake_openai: FakeOpenAI, openai_client: AsyncOpenAI, api: str, expected_path: str
) -> None:
    set_tracing_disabled(True)
    fake_openai.reply_text = REPLY
    model: Model
    if api == "responses":
        model = OpenAIResponsesModel(model="gpt-4.1", openai_client=openai_client)
    else:
        model = OpenAIChatCompletionsModel(model="gpt-4.1", openai_client=openai_client)
    agent = Agent(name="Assistant", instructions="Be helpful.", model=model)

    result = Runner.run_streamed(agent, "Say the pangram.")
    text_deltas: list[str] = []
    async for event in result.stream_events():
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
            text_deltas.append(event.data.delta)

    assert result.final_output == REPLY
    assert "".join(text_deltas) == REPLY
    assert len(text_deltas) > 3
    (request,) = fake_openai.requests
    assert request.path == expected_path
    assert request.json["stream"] is True
    assert "Say the pangram." in str(request.json)


async def test_standalone_server_lifecycle() -> None:
    with FakeOpenAI(api_key="sk-custom", reply_text="Hi!") as fake:
        base_url = fake.base_url
        async with AsyncOpenAI(api_key="sk-custom", base_url=base_url, max_retries=0) as client:
            response = await client.responses.create(model="gpt-4.1", input="x")
            assert response.output_text == "Hi!"
            assert len(fake.requests) == 1

            fake.reply_text = "Changed."
            fake.api_key = "sk-rotated"
            with pytest.raises(openai.AuthenticationError):
                await client.responses.create(model="gpt-4.1", input="x")

            fake.reset()
            assert fake.requests == []
            response = await client.responses.create(model="gpt-4.1", input="x")
            assert response.output_text == "Hi!"

    async with AsyncOpenAI(api_key="sk-custom", base_url=base_url, max_retries=0) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.responses.create(model="gpt-4.1", input="x")
