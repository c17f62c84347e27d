"""The events contract: which names exist, what each one's ``data`` may hold, and how a
raw event (from a loader's batch or from Kithost itself) becomes a valid one or a reason
to drop it.

Client names are what loaders send to ``POST /v1/embed/{pk}/events``; names starting with
``server.`` are facts from Kithost (session minting, the chat runtime) and are refused from
clients. ``data`` is checked per name: the typed names below field by field, the others as
a small JSON object (at most :data:`MAX_GENERIC_KEYS` keys, :data:`MAX_DATA_BYTES` bytes).
Any ``data`` nests at most :data:`MAX_DATA_DEPTH` arrays and objects deep.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from kithost.kit.schemas import has_nul
from kithost.kit.visible import has_invisible

MAX_EVENTS = 50
MAX_BODY_BYTES = 64 * 1024
MAX_DATA_BYTES = 2048
MAX_GENERIC_KEYS = 16
MAX_DATA_DEPTH = 32
"""How deep ``data`` may nest: a body's JSON may nest a thousand levels, deeper than
Python's checks of it (NUL characters, the models) can recurse."""
MAX_AGE = timedelta(days=7)
"""Older events are dropped (``too_old``): a beacon that late is not worth a rollup rewrite."""
MAX_AHEAD = timedelta(hours=1)
"""Clocks run ahead; further than this is ``invalid_time``."""

MAX_AHEAD_MS = MAX_AHEAD // timedelta(milliseconds=1)
MAX_AGE_MS = MAX_AGE // timedelta(milliseconds=1)

EVENT_KEYS = frozenset({"id", "name", "time", "data", "end_user"})
EVENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
END_USER = re.compile(r"[ua]:[^\x00-\x1f\x7f]{1,208}")
SERVER_PREFIX = "server."

Text = Annotated[str, StringConstraints(max_length=1000)]
ThreadId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Millis = Annotated[int, Field(ge=0, le=24 * 3600 * 1000)]
Tokens = Annotated[int, Field(ge=0, le=10**9)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ClientError(_Data):
    kind: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    message: Text
    hint: Annotated[str, StringConstraints(max_length=500)] | None = None
    """What to do about it. A loader's hint (also handed to the page's ``error`` listeners)
    is replaced by Kithost's own advice, :func:`loader_hint`: anyone can send a batch."""
    frame: Annotated[str, StringConstraints(max_length=500)] | None = None


LOADER_HINTS = {
    "config_refused": "Publish the widget and add the page's origin to its allowed origins "
    "(if the configuration answered an error, try again later).",
    "network": "Check that Kithost is reachable from the page.",
    "frame_blocked": "Check the page's Content-Security-Policy (frame-src) and "
    "Cross-Origin-Embedder-Policy, and the widget's allowed origins.",
    "domain_key_missing": "Add OpenAI's domain key for the page's origin to the widget's "
    "allowed origin.",
    "script_blocked": "Allow Kithost in the page's Content-Security-Policy (script-src).",
    "script_timeout": "Allow cdn.platform.openai.com in the page's Content-Security-Policy "
    "(script-src, frame-src).",
    "rate_limited": "Visitors mint sessions faster than the widget's limits allow.",
    "client_tool_failed": "Register the page's handler of the tool the message names with "
    "kithost('on', 'tool:NAME', fn); it must answer within the tool's timeout.",
    "chatkit_error": "See the browser console of the chat's page.",
    "session_refused": "See the problem the message quotes.",
}
"""Kithost's advice for each kind of client error its loader reports."""

SESSION_HINTS = {
    "origin_not_allowed": "Add the page's origin to the widget's allowed origins.",
    "identity_required": "Call kithost('identify', token) with a token your backend signed.",
    "invalid_identity_token": "Sign identity tokens (HS256) with the widget's identity secret.",
    "hosted_workflow_unavailable": "OpenAI shut Agent Builder down: convert this widget to "
    "self-hosted in the dashboard.",
}
"""The advice for a refused session, by the problem's code (a ``session_refused`` message
reads ``<status> <code>: <detail>``)."""

_REFUSED_CODE = re.compile(r"\d{3} ([a-z_]+):")


def loader_hint(kind: str, message: str) -> str | None:
    """Kithost's advice for a client error a loader reported (never the text it sent: the
    owner's Errors screen shows it as "How to fix")."""
    if kind == "session_refused" and (code := _REFUSED_CODE.match(message)) is not None:
        return SESSION_HINTS.get(code[1], LOADER_HINTS[kind])
    return LOADER_HINTS.get(kind)


class SessionMinted(_Data):
    mode: Literal["self_hosted", "hosted"]
    origin: Annotated[str, StringConstraints(max_length=255)] | None = None


class ThreadFact(_Data):
    thread_id: ThreadId


class ResponseFinished(_Data):
    thread_id: ThreadId
    first_token_ms: Millis | None = None
    total_ms: Millis
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None


class ResponseFailed(_Data):
    thread_id: ThreadId
    error: Text


class GuardrailTripped(_Data):
    thread_id: ThreadId
    guardrail: Literal["max_input_length", "refused_topic", "moderation"]


class Feedback(_Data):
    thread_id: ThreadId
    kind: Literal["positive", "negative"]
    items: Annotated[int, Field(ge=0, le=10_000)]
    """How many of the thread's items the feedback applied to."""


CLIENT_NAMES = frozenset(
    {
        "loader.loaded",
        "launcher.shown",
        "widget.opened",
        "widget.closed",
        "session.minted",
        "session.refused",
        "chatkit.ready",
        "chatkit.response.start",
        "chatkit.response.end",
        "chatkit.thread.change",
        "chatkit.thread.load.start",
        "chatkit.thread.load.end",
        "chatkit.effect",
        "chatkit.log",
        "client.error",
    }
)
TYPED: dict[str, type[_Data]] = {
    "client.error": ClientError,
    "server.session.minted": SessionMinted,
    "server.thread.created": ThreadFact,
    "server.message.received": ThreadFact,
    "server.response.finished": ResponseFinished,
    "server.response.failed": ResponseFailed,
    "server.feedback": Feedback,
    "server.guardrail.tripped": GuardrailTripped,
}
SERVER_NAMES = frozenset(name for name in TYPED if name.startswith(SERVER_PREFIX))


@dataclass(frozen=True)
class Event:
    """A valid event, ready to store."""

    id: str
    name: str
    time: int
    """Epoch milliseconds."""
    end_user: str | None
    data: dict[str, Any]

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromtimestamp(self.time / 1000, UTC)

    @property
    def thread_id(self) -> str | None:
        value = self.data.get("thread_id")
        return value if isinstance(value, str) else None

    def as_task_arg(self) -> dict[str, Any]:
        """The event in the ``kithost.analytics.ingest`` task's format."""
        return {
            "id": self.id,
            "name": self.name,
            "time": self.time,
            "end_user": self.end_user,
            "data": self.data,
        }


@dataclass(frozen=True)
class Dropped:
    """Why one event of a batch was not kept."""

    index: int
    id: str | None
    code: str
    field: str
    message: str


def valid_end_user(value: object) -> bool:
    """An end-user id a session could have named: both mints refuse invisible characters
    (an identified id is shown in error groups' samples), which in ASCII are the controls."""
    if value is None:
        return True
    if not isinstance(value, str) or END_USER.fullmatch(value) is None:
        return False
    return value.isascii() or not has_invisible(value)


def validate(
    raw: object, index: int, *, end_user: str | None, now: datetime, from_client: bool
) -> Event | Dropped:
    """``raw`` (one element of a batch) as an :class:`Event`, or why it is dropped."""
    if not isinstance(raw, dict):
        return Dropped(index, None, "invalid_event", "", "an event is a JSON object")
    event_id = raw.get("id")
    if not isinstance(event_id, str) or EVENT_ID.fullmatch(event_id) is None:
        return Dropped(index, None, "invalid_id", "id", "8 to 64 characters [A-Za-z0-9_-]")

    def drop(code: str, field: str, message: str) -> Dropped:
        return Dropped(index, event_id, code, field, message)

    if not EVENT_KEYS.issuperset(raw):
        return drop("invalid_event", sorted(set(raw) - EVENT_KEYS)[0], "unknown field")
    name = raw.get("name")
    if not isinstance(name, str):
        return drop("unknown_name", "name", "a string naming the event")
    if from_client and name.startswith(SERVER_PREFIX):
        return drop("server_name", "name", "server events are not accepted from clients")
    if name not in CLIENT_NAMES and name not in SERVER_NAMES:
        return drop("unknown_name", "name", f"unknown event name {name[:40]!r}")
    millis = raw.get("time")
    if isinstance(millis, bool) or not isinstance(millis, int) or not 0 < millis < 10**14:
        return drop("invalid_time", "time", "epoch milliseconds")
    now_ms = now.timestamp() * 1000
    if millis > now_ms + MAX_AHEAD_MS:
        return drop("invalid_time", "time", "in the future")
    if millis < now_ms - MAX_AGE_MS:
        return drop("too_old", "time", f"older than {MAX_AGE.days} days")
    data = raw.get("data", {})
    checked = _data(name, data)
    if isinstance(checked, tuple):
        return drop(*checked)
    if from_client and name == "client.error":
        checked = _advised(checked)
    user = end_user if from_client else raw.get("end_user")
    if not valid_end_user(user):
        return drop("invalid_end_user", "end_user", "a u:… or a:… end-user id, or null")
    assert user is None or isinstance(user, str)
    return Event(event_id, name, millis, user, checked)


def _advised(error: dict[str, Any]) -> dict[str, Any]:
    """A client error with Kithost's hint in place of the one its sender wrote."""
    advised = {k: v for k, v in error.items() if k != "hint"}
    hint = loader_hint(error["kind"], error["message"])
    return advised if hint is None else advised | {"hint": hint}


def _data(name: str, data: object) -> dict[str, Any] | tuple[str, str, str]:
    """The event's data, or (code, field, message) refusing it."""
    if not isinstance(data, dict):
        return ("invalid_data", "data", "a JSON object")
    if _deeper_than(data, MAX_DATA_DEPTH):
        return ("invalid_data", "data", f"nested more than {MAX_DATA_DEPTH} levels deep")
    if has_nul(data):
        return ("invalid_data", "data", "NUL characters (U+0000) are not allowed")
    model = TYPED.get(name)
    if model is not None:
        try:
            return model.model_validate(data).model_dump(exclude_none=True)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(["data", *(str(p) for p in error["loc"])])
            code = "data_too_large" if error["type"].endswith("too_long") else "invalid_data"
            return (code, field, error["msg"])
    if len(data) > MAX_GENERIC_KEYS:
        return ("data_too_large", "data", f"at most {MAX_GENERIC_KEYS} keys")
    try:
        size = len(orjson.dumps(data))
    except orjson.JSONEncodeError:
        return ("invalid_data", "data", "not representable as JSON")
    if size > MAX_DATA_BYTES:
        return ("data_too_large", "data", f"at most {MAX_DATA_BYTES} bytes of JSON")
    return data


def _deeper_than(data: object, depth: int) -> bool:
    """Whether ``data`` nests more than ``depth`` arrays and objects (walked without
    recursion: the nesting is the sender's)."""
    level: list[object] = [data]
    for _ in range(depth):
        level = [
            child
            for value in level
            if isinstance(value, dict | list)
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


_VOLATILE = re.compile(
    r"""(?x)
    "[^"]*" | '[^']*'                                   # quoted values
    | https?://\S+                                      # urls
    | \b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b   # uuids
    | (?<=_)(?=[a-z0-9]*\d)[a-z0-9]{6,}\b                # prefixed ids: thr_<?>, req_<?>
    | \b0x[0-9a-f]+\b | \b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{6,}\b   # hex ids
    | \d+(?:\.\d+)?                                     # numbers (units stay: 30s -> <?>s)
    """,
    re.IGNORECASE,
)


_VOLATILE_LINE = re.compile(r":\d+(?::\d+)?\)?$|\?[^\s)]*")
"""A frame's line and column numbers and query string (cache busters) change per build."""


def normalise_message(message: str) -> str:
    """The message with what varies between occurrences replaced, for grouping."""
    return " ".join(_VOLATILE.sub("<?>", message).split())[:1000]


def fingerprint(kind: str, message: str, frame: str | None) -> str:
    """Which group a client error belongs to: kind + normalised message + top frame."""
    # The top line without the blanks around it: a stack's lines may end in spaces, which
    # kept its line numbers in (``_VOLATILE_LINE`` matches at the line's end).
    top = frame.strip().splitlines()[0].strip() if frame and frame.strip() else ""
    key = "\x1f".join((kind, normalise_message(message), _VOLATILE_LINE.sub("", top)))
    return hashlib.sha256(key.encode()).hexdigest()
