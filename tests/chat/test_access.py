"""Who may use ``POST /v1/chatkit/{pk}``, and what bad input gets: problems, never a 500."""

from __future__ import annotations

import base64
import json
import logging
import time

import httpx2
import pytest
from chatkit.types import ErrorEvent
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import signing
from kithost.sessions.tokens import audience
from kithost.widgets.config import WidgetConfig
from tests.chat.helpers import (
    BOB,
    assert_problem,
    chat_config,
    errors_logged,
    make_chat_widget,
    publish_unchecked,
    thread_of,
    visitor,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.visitor.helpers import ORIGIN, make_widget


async def test_end_users_and_widgets_are_isolated(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await make_chat_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    bob = await visitor(http, app, db, widget, end_user=BOB)
    thread_id = thread_of(await alice.send("My secret order"))

    assert (await bob.call("threads.list"))["data"] == []
    for op, params in (
        ("threads.get_by_id", {"thread_id": thread_id}),
        ("items.list", {"thread_id": thread_id}),
        ("threads.update", {"thread_id": thread_id, "title": "mine"}),
        ("threads.delete", {"thread_id": thread_id}),
        ("items.feedback", {"thread_id": thread_id, "item_ids": ["x"], "kind": "positive"}),
    ):
        assert_problem(await bob.post(op, **params), 404, "thread_not_found")
    message = {
        "content": [{"type": "input_text", "text": "hi"}],
        "attachments": [],
        "inference_options": {},
    }
    response = await bob.post("threads.add_user_message", thread_id=thread_id, input=message)
    assert_problem(response, 404, "thread_not_found")
    thread = await alice.call("threads.get_by_id", thread_id=thread_id)
    assert thread["title"] == "My secret order"
    assert len(thread["items"]["data"]) == 2

    other = await make_chat_widget(db, app, fake_openai)
    stranger = await visitor(http, app, db, other)
    stranger.public_key = widget.public_key  # other widget's token, this widget's URL
    assert_problem(await stranger.post("threads.list"), 401, "invalid_session_token")
    same_user_other_widget = await visitor(http, app, db, other)
    assert (await same_user_other_widget.call("threads.list"))["data"] == []


async def test_tokens_and_origins(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await make_chat_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    claims = {
        "iss": app.state.settings.base_url,
        "aud": audience(widget.public_key),
        "sub": alice.end_user,
        "origin": ORIGIN,
        "tenant": str(widget.tenant_id),
        "widget": str(widget.id),
    }
    expired = await signing.sign(db, app.state.secret_box, claims, 60, now=int(time.time()) - 3600)
    forger = ECKey.generate_key("P-256", parameters={"kid": "forged"})
    payload = {**claims, "exp": int(time.time()) + 600}
    forged = jwt.encode({"alg": "ES256", "kid": "forged"}, payload, forger)

    for token in (expired, forged, "not-a-jwt"):
        response = await alice.post(
            "threads.list", headers=alice.headers(Authorization=f"Bearer {token}")
        )
        assert_problem(response, 401, "invalid_session_token")
        assert response.headers["access-control-allow-origin"] == ORIGIN
    missing = await alice.post("threads.list", headers={"Origin": ORIGIN})
    assert_problem(missing, 401, "missing_session_token")

    # A token is good only from the page it was minted for; foreign pages get no CORS.
    elsewhere = await alice.post("threads.list", headers=alice.headers(Origin="https://evil.test"))
    assert_problem(elsewhere, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in elsewhere.headers
    no_origin = await http.post(
        alice.url,
        json={"type": "threads.list", "params": {}},
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert_problem(no_origin, 403, "origin_not_allowed")
    framed = await visitor(http, app, db, widget, origin=app.state.settings.base_url)
    assert (await framed.call("threads.list"))["data"] == []
    assert_problem(
        await http.post("/v1/chatkit/pk_unknown", headers=alice.headers()), 404, "widget_not_found"
    )


async def test_preflight(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await make_chat_widget(db, app, fake_openai)
    url = f"/v1/chatkit/{widget.public_key}"
    allowed = await http.options(
        url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    headers = {
        h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")
    }
    assert headers == {"authorization", "content-type", "x-kithost-context"}
    denied = await http.options(url, headers={"Origin": "https://evil.test"})
    assert_problem(denied, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in denied.headers
    # An upload URL carries its own signed token: any page may send it the bytes.
    upload = await http.options(
        f"{url}/attachments/atc_any/upload", headers={"Origin": "https://evil.test"}
    )
    assert upload.status_code == 204
    assert upload.headers["access-control-allow-origin"] == "*"
    assert upload.headers["access-control-allow-methods"] == "POST"


def context_header(value: object) -> str:
    return encoded_context(json.dumps(value))


def encoded_context(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def nested_context(levels: int) -> str:
    """The header of an object nesting ``levels`` deep (itself the first), built as text:
    ``json.dumps`` of one that deep would hit the recursion limit the check guards."""
    return encoded_context('{"k": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}")


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "field"),
    [
        (b"{not json", {}, 400, "invalid_chatkit_request", "body"),
        (b'{"type": "threads.explode", "params": {}}', {}, 400, "invalid_chatkit_request", None),
        (
            b'{"type": "threads.get_by_id", "params": {}}',
            {},
            400,
            "invalid_chatkit_request",
            "threads.get_by_id.params.thread_id",
        ),
        (
            b'{"type": "threads.list", "params": {}}',
            {"X-Kithost-Context": "%%%"},
            400,
            "invalid_page_context",
            "X-Kithost-Context",
        ),
        (
            b'{"type": "threads.list", "params": {}}',
            {"X-Kithost-Context": context_header([1])},
            400,
            "invalid_page_context",
            "X-Kithost-Context",
        ),
        (
            b'{"type": "threads.list", "params": {}}',
            {"X-Kithost-Context": context_header({"k": "v" * 4000})},
            400,
            "invalid_page_context",
            "X-Kithost-Context",
        ),
        (  # the model's instructions could not hold it (json.dumps recursing)
            b'{"type": "threads.list", "params": {}}',
            {"X-Kithost-Context": nested_context(1000)},
            400,
            "invalid_page_context",
            "X-Kithost-Context",
        ),
        (
            b'{"type": "threads.list", "params": {}}',
            {"X-Kithost-Context": nested_context(33)},
            400,
            "invalid_page_context",
            "X-Kithost-Context",
        ),
        (
            b'{"type": "threads.list", "params": {}, "pad": "' + b"x" * 2_000_000 + b'"}',
            {},
            413,
            "payload_too_large",
            None,
        ),
        (  # PostgreSQL's text and JSONB refuse NUL characters: refused first, anywhere
            b'{"type": "threads.get_by_id", "params": {"thread_id": "thr_\\u0000"}}',
            {},
            422,
            "validation_failed",
            "params.thread_id",
        ),
        (
            b'{"type": "threads.create", "params": {"input": {"content": [{"type": "input_text",'
            b' "text": "Hi \\u0000"}], "attachments": [], "inference_options": {}}}}',
            {},
            422,
            "validation_failed",
            "params.input.content.0.text",
        ),
        (
            b'{"type": "input.transcribe",'
            b' "params": {"audio_base64": "", "mime_type": "audio/webm"}}',
            {},
            400,
            "unsupported_request",
            None,
        ),
    ],
)
async def test_bad_requests_are_problems(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    field: str | None,
) -> None:
    alice = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai))
    response = await http.post(
        alice.url,
        content=body,
        headers=alice.headers(**{"Content-Type": "application/json", **headers}),
    )
    problem = assert_problem(response, status, code)
    assert response.headers["access-control-allow-origin"] == ORIGIN
    if field is not None:
        assert field in [error["field"] for error in problem["errors"]]  # type: ignore[attr-defined]


async def test_widgets_kithost_does_not_answer(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    hosted = WidgetConfig.model_validate({"mode": "hosted", "hosted": {"workflow_id": "wf_1"}})
    widget = await make_chat_widget(db, app, fake_openai, hosted)
    alice = await visitor(http, app, db, widget)
    assert_problem(await alice.post("threads.list"), 409, "widget_not_self_hosted")

    keyless = await make_widget(db)  # no key anywhere
    await publish_unchecked(db, keyless, chat_config(fake_openai))
    bob = await visitor(http, app, db, keyless)
    events = await bob.send("Hello?")
    assert [(e.code, e.message) for e in events if isinstance(e, ErrorEvent)] == [
        ("custom", "This chat is not set up to answer yet.")
    ]
    assert fake_openai.requests == []


async def test_a_thread_out_of_reach_is_a_404_not_a_logged_error(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Any visitor can name threads that are not theirs: answering that must not write
    error-level tracebacks (which would bury real errors), while real errors still log."""
    widget = await make_chat_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    bob = await visitor(http, app, db, widget, end_user=BOB)
    theirs = thread_of(await alice.send("My secret order"))
    action = {"type": "order.track", "payload": {}}
    caplog.set_level(logging.INFO)

    for thread_id in (theirs, "thr_unknown"):
        for op, params in (
            ("threads.custom_action", {"action": action, "item_id": None}),
            ("threads.sync_custom_action", {"action": action, "item_id": "msg_x"}),
            ("threads.retry_after_item", {"item_id": "msg_x"}),
            ("threads.add_client_tool_output", {"result": {}}),
        ):
            response = await bob.post(op, thread_id=thread_id, **params)
            assert_problem(response, 404, "thread_not_found")

    assert [r.getMessage() for r in errors_logged(caplog)] == []
