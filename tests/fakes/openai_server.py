"""A fake OpenAI-compatible HTTP server for tests that must not touch the internet.

`FakeOpenAI` serves a small Starlette app with uvicorn on 127.0.0.1 (OS-assigned port) in a
background thread, so the real `openai` client talks to it over real sockets::

    with FakeOpenAI() as fake:
        client = AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url)

Endpoints, shaped after the types of the installed `openai` client:

- ``POST /v1/chatkit/sessions`` and ``POST /v1/chatkit/sessions/{session_id}/cancel``
- ``POST /v1/chat/completions``, plain or with ``stream: true``
- ``POST /v1/responses``, plain or with ``stream: true``
- Files and Vector Stores (``fake.vector_stores``, see ``tests/fakes/vector_stores.py``);
  with `FakeOpenAI.projects` set, each file and vector store is its project's (the key that
  made it): other keys get OpenAI's 404 for it

Any other URL answers 404 in OpenAI's error shape. Every request is recorded in
`FakeOpenAI.requests` before scripted failures and the API key check are applied.

Streams send the reply in word-sized text deltas, the first one at once. Two hooks act
on the next stream, after ``n`` deltas: `FakeOpenAI.break_stream` fails it (an error event
in the API's own shape, or a dropped connection) and `FakeOpenAI.hold_stream` pauses it
until `FakeOpenAI.release` (or `reset`). `FakeOpenAI.hold_answer` holds the answer of the
next request to one URL, done already (what it made exists), until `FakeOpenAI.release`:
the test acts meanwhile, as if elsewhere between the call and what the client does next.

The `fake_openai` fixture is function-scoped but shares one server per test session (stopping
uvicorn takes ~0.2 s), calling `FakeOpenAI.reset()` before each test. Importing that one name
into a conftest is enough to make it available.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.vector_stores import VectorStores

DEFAULT_API_KEY = "sk-fake-openai-test-key"
DEFAULT_REPLY_TEXT = "Hello from the fake OpenAI server!"
CHATKIT_BETA = "chatkit_beta=v1"
DEFAULT_SESSION_SECONDS = 600
DEFAULT_REQUESTS_PER_MINUTE = 10

Json = dict[str, Any]
Handler = Callable[[Request, Json], Awaitable[Response]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    """URL path including the ``/v1`` prefix, e.g. ``/v1/chatkit/sessions``."""
    headers: dict[str, str]
    """Header names are lower-cased."""
    json: Any
    """Parsed JSON body; None when the body is empty or not valid JSON."""


@dataclass(frozen=True)
class _ScriptedError:
    status: int
    message: str
    error_type: str
    code: str | None
    param: str | None
    method: str | None
    """Only a request with this method takes it (None: any)."""


StreamFailure = Literal["error", "disconnect"]


class DroppedConnection(Exception):
    """Raised inside a streamed body: uvicorn aborts the response mid-stream."""


@dataclass
class _StreamScript:
    after: int
    """Text deltas sent before the failure or pause."""
    failure: StreamFailure | None
    """None: pause until released."""


class FakeOpenAI:
    """OpenAI-compatible server on loopback; see the module docstring."""

    def __init__(
        self, *, api_key: str = DEFAULT_API_KEY, reply_text: str = DEFAULT_REPLY_TEXT
    ) -> None:
        self.api_key = api_key
        """The bearer token accepted (with :attr:`project_keys`); others get a 401
        ``invalid_api_key`` error."""
        self.project_keys: set[str] = set()
        """Further keys accepted: other OpenAI projects' (each sees its own vector stores)."""
        self.projects = False
        """Whether files and vector stores are their projects' (:attr:`owners`): a key that
        did not make one gets OpenAI's 404 for it, a store's files included (off: any key
        reaches any of them, but only the key that made a store retrieves it)."""
        self.owners: dict[str, str] = {}
        """The key that made each file and vector store, by id."""
        self.reply_text = reply_text
        """What the model answers, split into word-sized stream chunks."""
        self.requests: list[RecordedRequest] = []
        self.sessions: dict[str, Json] = {}
        """ChatKit sessions created so far, by id, as returned to the client."""
        self.web_searches: list[Json] = []
        """The ``web_search`` tools of the Responses requests so far."""
        self.retired_workflows: set[str] = set()
        """Agent Builder workflows that no longer run: sessions for them answer 404."""
        self.delay_seconds = 0.0
        """How long every answer waits (to make clients time out)."""
        self.event_interval_seconds = 0.0
        """The pause after each text delta of a stream (a model that takes its time)."""
        self.flagged_words: set[str] = {"FLAGGED"}
        """What the moderation endpoint flags (a case-sensitive substring of the input)."""
        self.moderated: list[Any] = []
        """The inputs of the moderation requests so far."""
        self.function_calls: deque[tuple[str, str]] = deque()
        """Scripted function calls (:meth:`call_function`), in order."""
        self.function_outputs: list[str] = []
        """The ``function_call_output`` items the Responses requests sent back, in order."""
        self._failures: deque[_ScriptedError] = deque()
        self._stream_script: _StreamScript | None = None
        self._released = threading.Event()
        self._held_answer: tuple[str, str] | None = None
        self.holding = threading.Event()
        """Set while an answer :meth:`hold_answer` holds waits for :meth:`release`."""
        self._initial = (api_key, reply_text)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self.vector_stores = VectorStores(_new_id)
        """Files and vector stores (``tests/fakes/vector_stores.py``)."""
        self.app = Starlette(
            routes=[
                Route(
                    "/v1/chatkit/sessions",
                    self._endpoint(self._create_chatkit_session),
                    methods=["POST"],
                ),
                Route(
                    "/v1/chatkit/sessions/{session_id}/cancel",
                    self._endpoint(self._cancel_chatkit_session),
                    methods=["POST"],
                ),
                Route(
                    "/v1/chat/completions",
                    self._endpoint(self._chat_completions),
                    methods=["POST"],
                ),
                Route("/v1/responses", self._endpoint(self._responses), methods=["POST"]),
                Route("/v1/moderations", self._endpoint(self._moderations), methods=["POST"]),
                *self.vector_stores.routes(self._endpoint),
                Route(
                    "/{path:path}",
                    self._not_found,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                ),
            ]
        )

    # -- public API ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, to pass as the client's ``base_url``."""
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    def fail_next(
        self,
        status: int,
        message: str = "Scripted failure from FakeOpenAI.",
        code: str | None = None,
        *,
        error_type: str | None = None,
        param: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next request to a known endpoint with an OpenAI error JSON.

        Calls queue up: each one is used by exactly one request, so a client that retries
        consumes one per attempt; with ``method`` (``DELETE``, say), only a request with
        that method uses it (the others pass it by). `error_type` defaults to
        ``server_error`` for 5xx, ``requests`` for 429 and ``invalid_request_error``
        otherwise.
        """
        if error_type is None:
            error_type = _default_error_type(status)
        self._failures.append(_ScriptedError(status, message, error_type, code, param, method))

    def break_stream(self, after: int, failure: StreamFailure = "error") -> None:
        """Make the next stream fail after ``after`` text deltas: ``error`` sends the API's
        mid-stream error event, ``disconnect`` drops the connection."""
        self._stream_script = _StreamScript(after, failure)

    def hold_stream(self, after: int) -> None:
        """Make the next stream pause after ``after`` text deltas until :meth:`release`."""
        self._released.clear()
        self._stream_script = _StreamScript(after, None)

    def hold_answer(self, method: str, path: str) -> None:
        """Make the next ``method`` request to ``path`` (``/v1/files``, say) wait, once
        handled, until :meth:`release`: what it made exists, the client has no answer yet
        (:attr:`holding` is set meanwhile)."""
        self._released.clear()
        self._held_answer = (method, path)

    def call_function(self, name: str, arguments: Json | str) -> None:
        """Make the next Responses request offering a function tool ``name`` answer with a
        call of it (``arguments``: an object, or raw text as a model may send) instead of
        text; the request that brings its output back gets the reply text."""
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        self.function_calls.append((name, raw))

    def hand_off(self, agent_id: str) -> None:
        """Make the next request offering ``transfer_to_<agent_id>`` call it (an Agents SDK
        handoff); the next agent's request then gets the reply text."""
        self.call_function(f"transfer_to_{agent_id}", {})

    def release(self) -> None:
        self._released.set()

    def reset(self) -> None:
        """Forget requests, sessions and queued failures; restore the initial key and reply."""
        self.api_key, self.reply_text = self._initial
        self.delay_seconds = 0.0
        self.event_interval_seconds = 0.0
        self.project_keys.clear()
        self.projects = False
        self.owners.clear()
        self.requests.clear()
        self.sessions.clear()
        self.retired_workflows.clear()
        self.web_searches.clear()
        self.function_calls.clear()
        self.function_outputs.clear()
        self.moderated.clear()
        self.vector_stores.reset()
        self._failures.clear()
        self._stream_script = None
        self._held_answer = None
        self.holding.clear()
        self._released.set()

    def start(self) -> Self:
        """Serve on a free loopback port; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"fake-openai-{self._port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError("FakeOpenAI failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread; a no-op when not started."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- request plumbing ------------------------------------------------------------------

    async def _record(self, request: Request) -> tuple[bytes, Any]:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = dict(request.headers)
        self.requests.append(RecordedRequest(request.method, request.url.path, headers, body))
        return raw, body

    def _endpoint(
        self, handler: Handler, json_body: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap `handler` with recording, scripted failures, auth and (unless not
        ``json_body``: the handler reads the body) JSON body parsing."""

        async def endpoint(request: Request) -> Response:
            raw, body = await self._record(request)
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            failure = self._scripted_failure(request.method)
            if failure is not None:
                return _error(
                    failure.status,
                    failure.message,
                    error_type=failure.error_type,
                    code=failure.code,
                    param=failure.param,
                )
            denied = self._check_api_key(request)
            if denied is not None:
                return denied
            if json_body and raw and not isinstance(body, dict):
                return _error(400, "We could not parse the JSON body of your request.")
            body = body if isinstance(body, dict) else {}
            key = request.headers["authorization"].partition(" ")[2]
            hidden = self._other_project(request, body, key)
            if hidden is not None:
                return hidden
            response = await handler(request, body)
            made = request.method == "POST" and request.url.path in _OWNED
            if made and response.status_code == 200:
                self.owners[json.loads(bytes(response.body))["id"]] = key
            if self._held_answer == (request.method, request.url.path):
                self._held_answer = None
                self.holding.set()
                await asyncio.to_thread(self._released.wait, 30)
                self.holding.clear()
            return response

        return endpoint

    def _scripted_failure(self, method: str) -> _ScriptedError | None:
        """The first failure queued (:meth:`fail_next`) for a request with ``method``,
        taken from the queue; None when there is none."""
        for failure in self._failures:
            if failure.method in (None, method):
                self._failures.remove(failure)
                return failure
        return None

    def _check_api_key(self, request: Request) -> Response | None:
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if token != self.api_key and token not in self.project_keys:
            return _error(
                401,
                f"Incorrect API key provided: {_mask(token)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return None

    def _other_project(self, request: Request, body: Json, key: str) -> Response | None:
        """With :attr:`projects`, OpenAI's 404 for a request with ``key`` naming a file or
        vector store another key made (in the path, or the ``file_id`` attached); else None."""
        if not self.projects:
            return None
        named = [*request.path_params.values(), body.get("file_id")]
        for object_id in named:
            owner = self.owners.get(object_id) if isinstance(object_id, str) else None
            if owner is not None and owner != key:
                if object_id.startswith("vs_"):
                    return _error(404, f"No vector store found with id '{object_id}'.")
                return _error(404, f"No such File object: {object_id}")
        return None

    async def _not_found(self, request: Request) -> Response:
        await self._record(request)
        return _error(404, f"Invalid URL ({request.method} {request.url.path})")

    # -- ChatKit sessions ------------------------------------------------------------------

    async def _create_chatkit_session(self, request: Request, body: Json) -> Response:
        betas = {beta.strip() for beta in request.headers.get("openai-beta", "").split(",")}
        if CHATKIT_BETA not in betas:
            return _error(
                400,
                f"The ChatKit API requires the header 'OpenAI-Beta: {CHATKIT_BETA}'.",
                code="invalid_beta",
            )
        user = body.get("user")
        if not isinstance(user, str) or not user:
            return _missing_parameter("user")
        workflow = _object(body.get("workflow"))
        workflow_id = workflow.get("id")
        if not isinstance(workflow_id, str) or not workflow_id:
            return _missing_parameter("workflow.id")
        if workflow_id in self.retired_workflows:
            return _error(404, f"Workflow '{workflow_id}' not found.", code="workflow_not_found")
        seconds = _object(body.get("expires_after")).get("seconds", DEFAULT_SESSION_SECONDS)
        if not isinstance(seconds, int):
            return _error(400, "Invalid type for 'expires_after.seconds'.", param="expires_after")
        per_minute = _object(body.get("rate_limits")).get(
            "max_requests_per_1_minute", DEFAULT_REQUESTS_PER_MINUTE
        )
        session: Json = {
            "id": _new_id("cksess_"),
            "object": "chatkit.session",
            "client_secret": _new_id("ek_"),
            "expires_at": int(time.time()) + seconds,
            "status": "active",
            "user": user,
            "workflow": {
                "id": workflow_id,
                "version": workflow.get("version"),
                "state_variables": workflow.get("state_variables"),
                "tracing": {"enabled": _object(workflow.get("tracing")).get("enabled", True)},
            },
            "chatkit_configuration": _chatkit_configuration(
                _object(body.get("chatkit_configuration"))
            ),
            "rate_limits": {"max_requests_per_1_minute": per_minute},
            "max_requests_per_1_minute": per_minute,
        }
        self.sessions[session["id"]] = session
        return _json(session)

    async def _cancel_chatkit_session(self, request: Request, body: Json) -> Response:
        session_id = request.path_params["session_id"]
        session = self.sessions.get(session_id)
        if session is None:
            return _error(404, f"No session found with id '{session_id}'.")
        session["status"] = "cancelled"
        return _json(session)

    # -- Chat Completions ------------------------------------------------------------------

    async def _chat_completions(self, request: Request, body: Json) -> Response:
        model = body.get("model")
        if not isinstance(model, str):
            return _missing_parameter("model")
        messages = body.get("messages")
        if not isinstance(messages, list):
            return _missing_parameter("messages")
        for sent_message in messages:
            if isinstance(sent_message, dict) and sent_message.get("role") == "tool":
                self.function_outputs.append(str(sent_message.get("content")))
        offered = [
            {"type": "function", **_object(t.get("function"))}
            for t in body.get("tools") or []
            if isinstance(t, dict)
        ]
        call = self._function_call(offered)
        text = self.reply_text
        pieces = _split(text)
        base: Json = {
            "id": _new_id("chatcmpl-"),
            "created": int(time.time()),
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        usage = _chat_usage(_estimate_tokens(messages), len(pieces))
        if not body.get("stream"):
            message: Json = {
                "role": "assistant",
                "content": text,
                "refusal": None,
                "annotations": [],
            }
            answer = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
            return _json({**base, "object": "chat.completion", "choices": [answer], "usage": usage})

        include_usage = bool(_object(body.get("stream_options")).get("include_usage"))
        if call is not None:
            if not body.get("stream"):
                return _error(400, "The fake calls functions in streams only.")
            tool_call = {
                "index": 0,
                "id": call["call_id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
            start = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
            chunks: list[Json] = [
                {"index": 0, "delta": start, "logprobs": None, "finish_reason": None},
                {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"},
            ]
            sent = [
                _sse_data({**base, "object": "chat.completion.chunk", "choices": [c]})
                for c in chunks
            ]
            if include_usage:
                sent.append(
                    _sse_data(
                        {
                            **base,
                            "object": "chat.completion.chunk",
                            "choices": [],
                            "usage": _chat_usage(_estimate_tokens(messages), 1),
                        }
                    )
                )
            return self._stream([*sent, "data: [DONE]\n\n"], len(sent) + 1, [])

        def chunk(choices: list[Json], chunk_usage: Json | None = None) -> str:
            data: Json = {**base, "object": "chat.completion.chunk", "choices": choices}
            if include_usage:
                data["usage"] = chunk_usage
            return _sse_data(data)

        def choice(delta: Json, finish_reason: str | None = None) -> Json:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        events = [chunk([choice({"role": "assistant", "content": "", "refusal": None})])]
        events += [chunk([choice({"content": piece})]) for piece in pieces]
        events.append(chunk([choice({}, "stop")]))
        if include_usage:
            events.append(chunk([], usage))
        events.append("data: [DONE]\n\n")
        error = {"message": "The model failed mid-stream.", "type": "server_error"}
        return self._stream(
            events, 1, [_sse_data({"error": {**error, "param": None, "code": None}})]
        )

    # -- Moderations -----------------------------------------------------------------------

    async def _moderations(self, request: Request, body: Json) -> Response:
        given = body.get("input")
        if given is None:
            return _missing_parameter("input")
        self.moderated.append(given)
        texts = [given] if isinstance(given, str) else [json.dumps(t) for t in given]
        results = []
        for text in texts:
            flagged = any(word in text for word in self.flagged_words)
            categories = {"harassment": flagged, "violence": False}
            scores = {"harassment": 0.9 if flagged else 0.01, "violence": 0.01}
            results.append(
                {"flagged": flagged, "categories": categories, "category_scores": scores}
            )
        model = body.get("model", "omni-moderation-latest")
        return _json({"id": _new_id("modr-"), "model": model, "results": results})

    # -- Responses -------------------------------------------------------------------------

    async def _responses(self, request: Request, body: Json) -> Response:
        model = body.get("model")
        if not isinstance(model, str):
            return _missing_parameter("model")
        missing = self.vector_stores.unknown(body.get("tools") or [])
        if missing is not None:
            return _error(404, f"No vector store found with id '{missing}'.", param="tools")
        text = self.reply_text
        pieces = _split(text)
        created_at = int(time.time())
        item_id = _new_id("msg_")
        in_progress: Json = {
            "id": _new_id("resp_"),
            "object": "response",
            "created_at": created_at,
            "status": "in_progress",
            "background": False,
            "completed_at": None,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "metadata": body.get("metadata") or {},
            "model": model,
            "output": [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": None,
            "user": None,
        }
        for item in body.get("input") or []:
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                self.function_outputs.append(str(item.get("output")))
        call = self._function_call(body.get("tools") or [])
        if call is not None:
            return self._function_call_response(body, in_progress, call)
        part: Json = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        message: Json = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
        calls, annotations = self._hosted_tools(body.get("tools") or [], text)
        output: list[Json] = [*calls, message]
        part["annotations"] = annotations
        completed: Json = {
            **in_progress,
            "status": "completed",
            "completed_at": int(time.time()),
            "output": output,
            "usage": _responses_usage(_estimate_tokens(body.get("input")), len(pieces)),
        }
        if not body.get("stream"):
            return _json(completed)

        events: list[str] = []

        def emit(event_type: str, **fields: Any) -> None:
            data = {"type": event_type, "sequence_number": len(events), **fields}
            events.append(f"event: {event_type}\ndata: {json.dumps(data)}\n\n")

        index = len(output) - 1
        at = {"item_id": item_id, "output_index": index, "content_index": 0}
        emit("response.created", response=in_progress)
        emit("response.in_progress", response=in_progress)
        for number, call in enumerate(calls):
            emit("response.output_item.added", output_index=number, item=call)
            emit("response.output_item.done", output_index=number, item=call)
        emit(
            "response.output_item.added",
            output_index=index,
            item={**message, "status": "in_progress", "content": []},
        )
        emit("response.content_part.added", **at, part={**part, "text": "", "annotations": []})
        first_delta = len(events)
        for piece in pieces:
            emit("response.output_text.delta", **at, delta=piece, logprobs=[])
        emit("response.output_text.done", **at, text=text, logprobs=[])
        for number, annotation in enumerate(part["annotations"]):
            emit(
                "response.output_text.annotation.added",
                **at,
                annotation_index=number,
                annotation=annotation,
            )
        emit("response.content_part.done", **at, part=part)
        emit("response.output_item.done", output_index=index, item=message)
        emit("response.completed", response=completed)
        failure = {"code": "server_error", "message": "The model failed mid-stream."}
        failed = {**in_progress, "status": "failed", "error": failure}
        error_events: list[str] = []
        for event_type, fields in (
            ("error", {**failure, "param": None}),
            ("response.failed", {"response": failed}),
        ):
            data = {"type": event_type, "sequence_number": len(events), **fields}
            error_events.append(f"event: {event_type}\ndata: {json.dumps(data)}\n\n")
        return self._stream(events, first_delta, error_events)

    def _function_call(self, tools: list[Json]) -> Json | None:
        """The scripted call of a function among ``tools``, if one is next."""
        offered = {t.get("name") for t in tools if isinstance(t, dict) and t["type"] == "function"}
        if not self.function_calls or self.function_calls[0][0] not in offered:
            return None
        name, arguments = self.function_calls.popleft()
        return {
            "id": _new_id("fc_"),
            "type": "function_call",
            "status": "completed",
            "call_id": _new_id("call_"),
            "name": name,
            "arguments": arguments,
        }

    def _function_call_response(self, body: Json, in_progress: Json, call: Json) -> Response:
        usage = _responses_usage(_estimate_tokens(body.get("input")), 1)
        completed = {**in_progress, "status": "completed", "output": [call], "usage": usage}
        if not body.get("stream"):
            return _json(completed)
        events: list[str] = []
        for event_type, fields in (
            ("response.created", {"response": in_progress}),
            ("response.output_item.added", {"output_index": 0, "item": {**call, "arguments": ""}}),
            (
                "response.function_call_arguments.delta",
                {"item_id": call["id"], "output_index": 0, "delta": call["arguments"]},
            ),
            (
                "response.function_call_arguments.done",
                {"item_id": call["id"], "output_index": 0, "arguments": call["arguments"]},
            ),
            ("response.output_item.done", {"output_index": 0, "item": call}),
            ("response.completed", {"response": completed}),
        ):
            data = {"type": event_type, "sequence_number": len(events), **fields}
            events.append(f"event: {event_type}\ndata: {json.dumps(data)}\n\n")
        return self._stream(events, len(events), [])

    def _hosted_tools(self, tools: list[Json], text: str) -> tuple[list[Json], list[Json]]:
        """The hosted tool calls a Responses request with ``tools`` gets before its message,
        and the annotations citing what they found."""
        calls, annotations = [], []
        search = self.vector_stores.search(tools)
        if search is not None:
            call, citation = search
            calls.append(call)
            annotations.extend([citation] if citation else [])
        for tool in tools:
            if isinstance(tool, dict) and tool.get("type") == "web_search":
                self.web_searches.append(tool)
                domains = _object(tool.get("filters")).get("allowed_domains") or ["example.com"]
                calls.append(
                    {
                        "id": _new_id("ws_"),
                        "type": "web_search_call",
                        "status": "completed",
                        "action": {"type": "search", "query": "the visitor's question"},
                    }
                )
                annotations.append(
                    {
                        "type": "url_citation",
                        "url": f"https://{domains[0]}/answer",
                        "title": "The answer",
                        "start_index": 0,
                        "end_index": len(text),
                    }
                )
        return calls, annotations

    def _stream(self, events: list[str], first_delta: int, error_events: list[str]) -> Response:
        """The events as a stream, with the scripted failure or pause (if any) applied after
        the script's number of text deltas (the first one is ``events[first_delta]``)."""
        script, self._stream_script = self._stream_script, None
        released, interval = self._released, self.event_interval_seconds

        async def stream() -> AsyncIterator[str]:
            for index, event in enumerate(events):
                if script is not None and index == first_delta + script.after:
                    if script.failure == "disconnect":
                        raise DroppedConnection
                    if script.failure == "error":
                        for error in error_events:
                            yield error
                        return
                    await asyncio.to_thread(released.wait, 30)
                yield event
                await asyncio.sleep(interval if index >= first_delta else 0)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"x-request-id": _new_id("req_"), "cache-control": "no-cache"},
        )


# -- helpers -----------------------------------------------------------------------------


def _default_error_type(status: int) -> str:
    if status >= 500:
        return "server_error"
    if status == 429:
        return "requests"
    return "invalid_request_error"


def _error(
    status: int,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> Response:
    error = {"message": message, "type": error_type, "param": param, "code": code}
    return _json({"error": error}, status)


def _missing_parameter(param: str) -> Response:
    return _error(
        400,
        f"Missing required parameter: '{param}'.",
        code="missing_required_parameter",
        param=param,
    )


def _json(content: Json, status: int = 200) -> Response:
    return JSONResponse(content, status, headers={"x-request-id": _new_id("req_")})


def _sse_data(data: Json) -> str:
    return f"data: {json.dumps(data)}\n\n"


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


_OWNED = ("/v1/files", "/v1/vector_stores")
"""Where files and vector stores are made (their makers: :attr:`FakeOpenAI.owners`)."""


def _mask(key: str) -> str:
    return f"{key[:3]}{'*' * max(len(key) - 7, 0)}{key[-4:]}"


def _object(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _split(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is `text`."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def _estimate_tokens(value: Any) -> int:
    """A deterministic stand-in for token counting: ~4 characters per token."""
    text = value if isinstance(value, str) else json.dumps(value)
    return max(1, len(text) // 4)


def _chat_usage(prompt_tokens: int, completion_tokens: int) -> Json:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _responses_usage(input_tokens: int, output_tokens: int) -> Json:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _chatkit_configuration(overrides: Json) -> Json:
    """Resolve ChatKit configuration overrides against the documented defaults."""
    titling = _object(overrides.get("automatic_thread_titling"))
    uploads = _object(overrides.get("file_upload"))
    history = _object(overrides.get("history"))
    return {
        "automatic_thread_titling": {"enabled": titling.get("enabled", True)},
        "file_upload": {
            "enabled": uploads.get("enabled", False),
            "max_file_size": uploads.get("max_file_size", 512),
            "max_files": uploads.get("max_files", 10),
        },
        "history": {
            "enabled": history.get("enabled", True),
            "recent_threads": history.get("recent_threads"),
        },
    }


# -- fixture -----------------------------------------------------------------------------

_SESSION_SERVER = pytest.StashKey[FakeOpenAI]()


def shared_fake(config: pytest.Config) -> FakeOpenAI:
    """The test session's FakeOpenAI (the one `fake_openai` hands out), as it stands: for a
    fixture of a wider scope that needs only its address and key (a worker's settings)."""
    if _SESSION_SERVER not in config.stash:
        config.stash[_SESSION_SERVER] = FakeOpenAI().start()
        config.add_cleanup(config.stash[_SESSION_SERVER].stop)
    return config.stash[_SESSION_SERVER]


@pytest.fixture
def fake_openai(request: pytest.FixtureRequest) -> FakeOpenAI:
    """A running FakeOpenAI, `reset()` for this test.

    The server (and so its port and `base_url`) is shared by the whole test session: it starts
    on first use and stops when the session ends.
    """
    fake = shared_fake(request.config)
    fake.reset()
    return fake
