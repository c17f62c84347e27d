"""Hypothesis over the parsers that take outside input: whatever arrives, each answers a
value or a 4xx problem (a ``KithostError``), never another exception (a 500)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

import jwt
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import QueryParams
from starlette.types import Scope

from kithost.analytics.ingestion.service import parse_batch
from kithost.chat.endpoints import _parse as parse_chatkit_request
from kithost.chat.endpoints import page_context
from kithost.errors import KithostError
from kithost.kit import cursors
from kithost.kit.nul import refusal as nul_refusal
from kithost.kit.schemas import Instant, has_nul
from kithost.sessions.identity import verify_identity_token

T = TypeVar("T")
SECRET = "identity-secret-0123456789abcdef"
NOW = datetime(2026, 12, 5, tzinfo=UTC)
DEEP = "[" * 1500 + "]" * 1500
"""Deeper than Python's json (1,000 by default) and orjson (1,024) nest; small enough for
the page-context header."""
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
MESSAGE = json.dumps(
    {
        "type": "threads.create",
        "params": {
            "input": {
                "content": [{"type": "input_text", "text": "Hello"}],
                "attachments": [],
                "inference_options": {},
            }
        },
    }
).encode()


def attempt(parse: Callable[[], T]) -> T | KithostError:
    """What ``parse`` answers, or the problem it raises."""
    try:
        return parse()
    except KithostError as refused:
        return refused


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@given(
    st.text(max_size=300)
    | st.binary(max_size=300).map(_b64)
    | JSON_VALUES.map(lambda value: _b64(json.dumps(value).encode()))
)
@example(_b64(DEEP.encode()))
@example(_b64(b'{"a": ' * 3000 + b"1" + b"}" * 3000))
def test_page_context_is_an_object_or_a_400(header: str) -> None:
    value = attempt(lambda: page_context(header))
    if isinstance(value, KithostError):
        assert value.status == 400
    else:
        assert isinstance(value, dict)


@given(
    st.binary(max_size=2000) | JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.sampled_from(["application/json", "text/plain; charset=utf-8", "text/html", None]),
)
@example(DEEP.encode(), "application/json")
@example(b'{"end_user": null, "events": [' + b"{}," * 60 + b"{}]}", "text/plain")
def test_an_event_batch_is_parsed_or_refused(body: bytes, content_type: str | None) -> None:
    batch = attempt(lambda: parse_batch(body, content_type, NOW))
    if isinstance(batch, KithostError):
        assert 400 <= batch.status < 500
    else:
        assert len(batch.events) + len(batch.dropped) <= 200


@given(st.binary(max_size=500) | st.integers(0, len(MESSAGE)).map(lambda n: MESSAGE[:n]))
@example(MESSAGE)
@example(DEEP.encode())
def test_a_chatkit_request_is_parsed_or_a_400(body: bytes) -> None:
    request = attempt(lambda: parse_chatkit_request(body))
    if isinstance(request, KithostError):
        assert request.status == 400
        assert body != MESSAGE
    else:
        assert request.type == "threads.create"


CLAIMS = st.dictionaries(
    st.sampled_from(["sub", "exp", "nbf", "name", "email", "iat", "x"]), JSON_VALUES, max_size=6
)


@given(st.text(max_size=400) | CLAIMS.map(lambda claims: jwt.encode(claims, SECRET)))
@example(jwt.encode({"sub": "42", "exp": 2_000_000_000 + 10**6}, SECRET))
@example(jwt.encode({"sub": "\u202e42", "exp": int(time.time()) + 60}, SECRET))
def test_an_identity_token_is_an_end_user_or_a_401(token: str) -> None:
    user = attempt(lambda: verify_identity_token(token, SECRET))
    if isinstance(user, KithostError):
        assert user.status == 401
    else:
        assert user.id.startswith("u:")
        assert user.verified


OFFSETS = st.none() | st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.datetimes(timezones=OFFSETS) | st.text(max_size=40))
@example(datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))))
@example(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))))
def test_an_instant_is_the_same_moment_in_utc_or_a_validation_error(
    given: datetime | str,
) -> None:
    """What a client sends as ``since``/``until`` (``kit.schemas.Instant``): a validation
    error (a 422 on the field), never an ``OverflowError`` (a 500)."""
    text = given.isoformat() if isinstance(given, datetime) else given
    try:
        moment = TypeAdapter(Instant).validate_python(text)
    except ValidationError:
        return
    assert moment.tzinfo is UTC
    if isinstance(given, datetime):
        assert moment == given


QUERY_PARTS = st.sampled_from(
    ["%00", "\x00", "%2500", "%", "%0", "=", "&", "+", ";", "a", "%C3%A9"]
)


@given(
    st.text(max_size=60) | st.lists(QUERY_PARTS, max_size=12).map("".join),
    # ASCII: the HTTP server refuses a request line holding any other byte (400).
    (
        st.text(st.characters(max_codepoint=0x7F), max_size=200)
        | st.lists(QUERY_PARTS).map("".join)
    ).map(str.encode),
)
@example("/api/v1/tenants/a\x00b", b"")
@example("/", b"q=%2500&x%00=1")
def test_a_url_is_refused_exactly_when_a_route_would_read_a_nul(path: str, query: bytes) -> None:
    """Whatever the URL, :mod:`kithost.kit.nul` answers at once, and refuses it exactly when
    the path, or a query parameter as the routes read it (Starlette's ``QueryParams``),
    holds a NUL: never a NUL let through, never a good URL refused."""
    scope: Scope = {"type": "http", "path": path, "query_string": query, "headers": []}
    refusal = nul_refusal(scope)
    if "\x00" in path:
        assert refusal is not None
        assert refusal.status_code == 404
    elif any("\x00" in name + value for name, value in QueryParams(query).multi_items()):
        assert refusal is not None
        assert refusal.status_code == 422
    else:
        assert refusal is None


CURSOR_TIMES = st.datetimes(timezones=OFFSETS).map(datetime.isoformat) | st.text(max_size=30)
CURSOR_IDS = st.uuids().map(str) | st.text(max_size=30)


@given(
    st.text(max_size=100)
    | st.tuples(CURSOR_TIMES, CURSOR_IDS).map(lambda p: _b64(f"{p[0]} {p[1]}".encode())),
    st.booleans(),
)
@example(_b64(b"2026-12-05T00:00:00+00:00 thr_\x00"), False)
@example(_b64(b"0001-01-01T00:00:00+01:00 thr_a"), False)
@example(_b64(b"9999-12-31T23:59:59-01:00 " + str(uuid.UUID(int=1)).encode()), True)
def test_a_cursor_is_a_position_a_database_compares_or_a_422(cursor: str, uuids: bool) -> None:
    """A cursor a client sends back (``kit.cursors``), tampered with or not: a position whose
    time exists in UTC and whose id holds no NUL (PostgreSQL refuses one even to compare),
    of the list's type, or a 422 on the cursor's parameter; never a 500 from the database."""

    def decoded() -> cursors.Position[uuid.UUID] | cursors.Position[str]:
        if uuids:
            return cursors.decode(cursor, uuid.UUID, field="cursor")
        return cursors.decode(cursor, str, field="cursor")

    position = attempt(decoded)
    if isinstance(position, KithostError):
        assert position.status == 422
        assert [e.field for e in position.errors or []] == ["cursor"]
        return
    moment, id = position
    assert moment.tzinfo is not None
    moment.astimezone(UTC)  # what binding it does: an OverflowError out of range
    assert isinstance(id, uuid.UUID if uuids else str)
    assert not has_nul(str(id))
