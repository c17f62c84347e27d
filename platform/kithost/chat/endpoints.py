"""``POST /v1/chatkit/{pk}``: the ChatKit protocol for self-hosted widgets, and the
attachment upload and preview URLs it hands out.

Order of checks for the protocol route (fail closed, nothing looked up for a request no
allowed page can send):

1. no ``Origin``, or one not spelled as browsers send it → 403 ``origin_not_allowed``,
   before any lookup (``visitor.routes.visitor_origin``, as the session route);
2. unknown key or nothing published → 404 ``widget_not_found``;
3. an origin that is neither the widget's nor Kithost's own (the framed page) → 403
   ``origin_not_allowed``; these 403s carry no CORS headers;
4. from here on, errors carry CORS headers so the loader can read them (a 401 is its cue
   to refresh the token): no or a bad token (bound to widget, end user and origin) → 401
   ``missing_session_token`` / ``invalid_session_token``; a framed chat's token whose
   embedder the widget no longer allows → 403 ``embedder_not_allowed`` (checked against
   the config cache, every request); ``X-Kithost-Context`` not
   base64url JSON of an object within 4096 bytes and 32 levels of nesting → 400
   ``invalid_page_context``; a body
   over ``KITHOST_CHAT_MAX_BODY_BYTES`` → 413; a body that is not a ChatKit request → 400
   ``invalid_chatkit_request`` with the fields; a NUL character anywhere in it (PostgreSQL
   refuses it) → 422 ``validation_failed`` naming where (type ``nul_character``); so too
   what ChatKit's types leave unbounded (:func:`_check_bounds`: feedback on over 100 items,
   a title over 200 characters or with invisible ones); a streamed request (an answer) when
   the process streams ``KITHOST_MAX_OPEN_ANSWERS`` already → 503 ``server_busy`` with
   ``Retry-After``, before any thread is read or anything written (``answers``); and an
   attachment twice in one message.

Streams are ``text/event-stream``: the first event is produced before the response starts,
so a thread, item or attachment the end user cannot see is a 404 problem, not a broken
stream. Upload and preview URLs carry their own signed token (``chat.attachments``) and
answer any origin (``Access-Control-Allow-Origin: *``, no credentials): ChatKit's frame
calls them without the loader's ``fetch``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, BinaryIO

import orjson
import structlog
from chatkit.errors import ErrorCode
from chatkit.server import NonStreamingResult, StreamingResult
from chatkit.types import (
    ChatKitReq,
    ErrorEvent,
    ItemsFeedbackReq,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsUpdateReq,
    is_streaming_req,
)
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import Receive, Scope, Send

from kithost.chat import client_tools
from kithost.chat.answers import OpenAnswer
from kithost.chat.attachments import AttachmentRules, Purpose
from kithost.chat.auth import missing_token
from kithost.chat.context import ChatContext
from kithost.chat.errors import GONE_EVENT, ChatGone, problem_for, sse
from kithost.chat.runtime import Runtime, runtime
from kithost.chat.server import ChatServer
from kithost.errors import (
    BadRequest,
    Conflict,
    FieldError,
    PayloadTooLarge,
    Unauthorized,
    invalid_field,
)
from kithost.health.metrics import CHAT_FIRST_TOKEN_SECONDS, CHAT_STREAM_SECONDS, CHAT_STREAMS
from kithost.kit.schemas import NUL_MESSAGE, nul_at, problems
from kithost.kit.visible import INVISIBLE_MESSAGE, INVISIBLE_TYPE, has_invisible
from kithost.models import WidgetMode
from kithost.sessions.service import check_embedder, check_policy
from kithost.visitor.cache import published_answers
from kithost.visitor.routes import (
    PathParamsRoute,
    admitted_origin,
    any_origin,
    cors_headers,
    cors_problems,
    visitor_origin,
    visitor_route,
)
from kithost.visitor.service import Published

log = structlog.get_logger(__name__)

CHATKIT_PATH = "/v1/chatkit/{pk}"
ATTACHMENT_PATH = "/v1/chatkit/{pk}/attachments/{attachment_id}"
CONTEXT_HEADER = "x-kithost-context"
MAX_CONTEXT_BYTES = 4096
MAX_CONTEXT_DEPTH = 32
"""How deeply the page context may nest (the object itself is level 1). orjson reads up to
1024 levels, but the context is put into the model's instructions with ``json.dumps``,
which recurses and fails near Python's recursion limit (~1000): a stream error after the
message was stored. What a page passes is a few keys (``setContext``); 32 levels is far
beyond that and far below any recursion limit."""
MULTIPART_OVERHEAD = 64 * 1024
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""What a preview URL shows in the browser (``Content-Disposition: inline``): raster images,
which hold no script or links. Anything else, SVG included, is a download: its links would
be clickable on Kithost's own origin."""
MAX_FEEDBACK_ITEMS = 100
"""ChatKit's thumbs name the items of one answer: a handful. The ids go into one statement's
``IN`` list, which a body's worth of ids would make tens of thousands long."""
MAX_TITLE_LENGTH = 200
"""Room for any title a person types; titles Kithost makes are 60 (``server.title_of``)."""
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_LOCALE = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,3}$")
_REQUEST: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)
_ANY_ORIGIN = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
TEXT_DELTA = b'"assistant_message.content_part.text_delta"'
"""In the event that carries the first text the model streams back."""


async def chatkit(request: Request, pk: str) -> Response:
    received_at = time.monotonic()
    chat = runtime(request.app.state)
    origin, widget = await visitor_origin(request, pk)
    cors = cors_headers(origin)
    with cors_problems(cors, problem_for):
        return await _chatkit(request, chat, widget, origin, received_at, cors)


async def _chatkit(
    request: Request,
    chat: Runtime,
    widget: Published,
    origin: str,
    received_at: float,
    cors: dict[str, str],
) -> Response:
    end_user_id = await _end_user(request, chat, widget, origin)
    if widget.widget_config.mode is not WidgetMode.self_hosted:
        raise Conflict("This widget's chat is hosted by OpenAI.", code="widget_not_self_hosted")
    context = ChatContext(
        widget=widget,
        end_user_id=end_user_id,
        origin=origin,
        locale=_locale(request.headers.get("accept-language")),
        page_context=page_context(request.headers.get(CONTEXT_HEADER)),
        received_at=received_at,
    )
    body = await _read(request, chat.settings.chat_max_body_bytes)
    parsed = _parse(body)
    _check_bounds(parsed)
    server = chat.server(parsed)
    if not is_streaming_req(parsed):  # answers nothing
        result = await server.process_request(parsed, context)
        assert isinstance(result, NonStreamingResult)
        return Response(result.json, media_type="application/json", headers=cors)
    # An answer: in progress from before anything is written (503 ``server_busy`` when the
    # process streams as many as it may) until its response ends, however it ends.
    answer = chat.answers.open(context, server.store, getattr(parsed.params, "thread_id", None))
    try:
        await _check_attachments(server, parsed, context)
        await client_tools.check_output(server.store, parsed, context)
        streamed = await server.process_request(parsed, context)
        assert isinstance(streamed, StreamingResult)
        return await _stream(streamed, cors, received_at, answer)
    except BaseException:
        answer.close()
        raise


async def upload(request: Request, pk: str, attachment_id: str) -> Response:
    chat = runtime(request.app.state)
    with cors_problems(_ANY_ORIGIN, problem_for):
        context = await _link_context(request, chat, pk, attachment_id, "upload")
        attachments = chat.attachment_store()
        announced = await attachments.announced_size(attachment_id, context)
        async with _uploaded_file(request, announced) as (file, mime_type):
            attachment = await attachments.upload(attachment_id, file, mime_type, context)
    body = attachment.model_dump_json(
        by_alias=True, exclude_none=True, context={"exclude_metadata": True}
    )
    return Response(body, media_type="application/json", headers=_ANY_ORIGIN)


async def preview(request: Request, pk: str, attachment_id: str) -> Response:
    chat = runtime(request.app.state)
    with cors_problems(_ANY_ORIGIN, problem_for):
        context = await _link_context(request, chat, pk, attachment_id, "preview")
        stored = await chat.attachment_store().pieces(attachment_id, context)
    disposition = "inline" if stored.mime_type in INLINE_TYPES else "attachment"
    return StreamingResponse(
        stored.pieces,
        media_type=stored.mime_type,
        headers={
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "private, max-age=3600",
            "Content-Disposition": disposition,
            "Content-Length": str(stored.size),
            # Nothing served from Kithost's origin runs script there, whatever its type.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
        },
    )


router = APIRouter(tags=["chat"])
visitor_route(
    router,
    CHATKIT_PATH,
    chatkit,
    method="POST",
    allow_headers="Authorization, Content-Type, X-Kithost-Context",
    origin=admitted_origin,
    preflight_name="chatkit_preflight",
    preflight_summary="CORS preflight for the ChatKit protocol",
    preflight_statuses=(403, 404),
    summary="The ChatKit protocol (self-hosted widgets)",
    response_class=Response,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
)
visitor_route(
    router,
    f"{ATTACHMENT_PATH}/upload",
    upload,
    method="POST",
    allow_headers="Content-Type",
    origin=any_origin,
    preflight_name="upload_preflight",
    preflight_summary="CORS preflight for uploads",
    preflight_statuses=(),
    summary="Upload an attachment's bytes (signed URL)",
    response_class=Response,
    responses=problems(400, 401, 404, 409, 413),
)
router.add_api_route(
    f"{ATTACHMENT_PATH}/preview",
    preview,
    methods=["GET"],
    route_class_override=PathParamsRoute,
    summary="An attachment's bytes for its owner (signed URL)",
    response_class=Response,
    responses=problems(401, 404),
)


async def _end_user(request: Request, chat: Runtime, widget: Published, origin: str) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise missing_token()
    claims = await chat.tokens.verify(token, public_key=widget.public_key, origin=origin)
    if (claims.tenant_id, claims.widget_id) != (str(widget.tenant_id), str(widget.widget_id)):
        raise Unauthorized(
            "The session token is not for this widget.", code="invalid_session_token"
        )
    check_policy(widget, claims.end_user_id)
    if claims.embedder is not None:  # a framed chat: its embedder still allowed
        check_embedder(widget, claims.embedder)
    return claims.end_user_id


def page_context(header: str | None) -> dict[str, Any] | None:
    """The loader's page context: base64url (no padding) of a UTF-8 JSON object."""
    if header is None:
        return None
    try:
        if len(header) > MAX_CONTEXT_BYTES or not _BASE64URL.match(header):
            raise ValueError("not base64url")
        # orjson: bounded nesting (json.loads would raise RecursionError, a 500).
        value = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise _bad_context() from exc
    if not isinstance(value, dict) or _deeper_than(value, MAX_CONTEXT_DEPTH):
        raise _bad_context()
    return value


def _deeper_than(value: object, limit: int) -> bool:
    """Whether JSON ``value`` nests objects and arrays more than ``limit`` levels (walked
    without recursion: it is the recursion this guards against)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def _bad_context() -> BadRequest:
    message = (
        f"base64url (no padding) of a JSON object, at most {MAX_CONTEXT_BYTES} bytes,"
        f" nested at most {MAX_CONTEXT_DEPTH} levels"
    )
    return BadRequest(
        "The page context is not valid.",
        code="invalid_page_context",
        errors=[FieldError(field="X-Kithost-Context", message=message, type="value")],
    )


def _locale(accept_language: str | None) -> str | None:
    first = (accept_language or "").split(",", 1)[0].split(";", 1)[0].strip()
    return first if _LOCALE.match(first) else None


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body may have at most {limit} bytes.")


def _parse(body: bytes) -> ChatKitReq:
    try:
        request = _REQUEST.validate_json(body)
    except ValidationError as exc:
        raise BadRequest(
            "The body is not a ChatKit request.",
            code="invalid_chatkit_request",
            errors=[
                FieldError(
                    field=".".join(str(part) for part in error["loc"]) or "body",
                    message=error["msg"],
                    type=error["type"],
                )
                for error in exc.errors()
            ],
        ) from exc
    # JSON spells a NUL character only so; PostgreSQL's text and JSONB refuse it, wherever
    # it is (an id looked up, a message or tool output stored): a 422, as in every schema.
    nul = nul_at(orjson.loads(body)) if b"\\u0000" in body else None
    if nul is not None:
        raise invalid_field(".".join(map(str, nul)), NUL_MESSAGE, "nul_character")
    return request


def _check_bounds(request: ChatKitReq) -> None:
    """What ChatKit's types leave unbounded, bounded before anything is looked up or stored:
    feedback names at most :data:`MAX_FEEDBACK_ITEMS` items, and a title the visitor gives
    a thread is at most :data:`MAX_TITLE_LENGTH` characters, none of them invisible (control,
    bidi override, …: tenants' staff read titles in the conversations they review, and such
    characters can reorder or hide what they read; identity tokens' names are held to the
    same rule). 422 ``validation_failed`` naming the field, as the attachments' count."""
    if isinstance(request, ItemsFeedbackReq) and len(request.params.item_ids) > MAX_FEEDBACK_ITEMS:
        raise invalid_field(
            "params.item_ids", f"at most {MAX_FEEDBACK_ITEMS} items per feedback", "too_long"
        )
    if isinstance(request, ThreadsUpdateReq):
        title = request.params.title
        if len(title) > MAX_TITLE_LENGTH:
            raise invalid_field(
                "params.title", f"at most {MAX_TITLE_LENGTH} characters", "string_too_long"
            )
        if has_invisible(title):
            raise invalid_field("params.title", INVISIBLE_MESSAGE, INVISIBLE_TYPE)


async def _check_attachments(server: ChatServer, request: ChatKitReq, context: ChatContext) -> None:
    """A message may only carry the end user's own uploaded, unused attachments, each once.

    A duplicate is refused rather than dropped: ChatKit's client never sends one (every
    upload has its own id), so it is a broken or forged client, and a message stored as
    other than it was sent would hide that."""
    if not isinstance(request, ThreadsCreateReq | ThreadsAddUserMessageReq):
        return
    attachment_ids = request.params.input.attachments
    if attachment_ids:
        rules = AttachmentRules.of(context.widget.widget_config.chatkit, server.settings)
        rules.check_count(len(attachment_ids))
        if len(set(attachment_ids)) < len(attachment_ids):
            raise invalid_field("params.input.attachments", "each attachment at most once")
        for attachment_id in attachment_ids:
            await server.store.attachable(attachment_id, context)


async def _stream(
    result: StreamingResult, cors: dict[str, str], received_at: float, answer: OpenAnswer
) -> StreamingResponse:
    events = aiter(result)
    first = await anext(events, b"")
    return _AnswerResponse(
        _continue(first, events, received_at, answer),
        answer,
        media_type="text/event-stream",
        headers={**cors, "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class _AnswerResponse(StreamingResponse):
    """An answer's stream, which gives its place back however the response ends: even when
    its events are never read (the visitor gone before it started), or read no further
    (gone amid one: the events are closed only once collected)."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        answer: OpenAnswer,
        *,
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.answer.close()


async def _continue(
    first: bytes, events: AsyncIterator[bytes], received_at: float, answer: OpenAnswer
) -> AsyncIterator[bytes]:
    """The answer's events; cut short with ``ChatGone``'s error when its tenant is deleted
    (``answers``: the task is cancelled while it waits for the next event)."""
    outcome = "disconnected"  # unless the stream gets to its end
    waiting_for_text = True
    next_event = events.__anext__
    answer.streaming()
    try:
        yield first
        while True:
            answer.waiting = True
            try:
                event = await next_event()
            except StopAsyncIteration:
                break
            finally:
                answer.waiting = False
            if waiting_for_text and TEXT_DELTA in event:
                waiting_for_text = False
                CHAT_FIRST_TOKEN_SECONDS.observe(time.monotonic() - received_at)
            yield event
        outcome = "completed"
    except ChatGone:  # after the SDK's last error event (the store logged it)
        outcome = "failed"
        yield sse(GONE_EVENT)
    except asyncio.CancelledError:
        if not answer.was_cut():  # the visitor left, or the server stops
            raise
        outcome = "failed"  # the tenant was deleted (the SDKs stopped the answer)
        yield sse(GONE_EVENT)
    except Exception:
        # The SDK turns the response's errors into error events itself; this is the rest.
        log.exception("chat_stream_failed")
        outcome = "failed"
        yield sse(ErrorEvent(code=ErrorCode.STREAM_ERROR, allow_retry=True))
    finally:
        answer.close()
        CHAT_STREAMS.labels(outcome).inc()
        CHAT_STREAM_SECONDS.observe(time.monotonic() - received_at)


async def _link_context(
    request: Request, chat: Runtime, pk: str, attachment_id: str, purpose: Purpose
) -> ChatContext:
    """The context of an upload or preview URL: the end user its token was signed for."""
    widget = (await published_answers(request.app.state, pk)).published
    end_user_id = chat.urls.end_user(purpose, pk, attachment_id, request.query_params.get("token"))
    return ChatContext(
        widget=widget,
        end_user_id=end_user_id,
        origin=request.headers.get("origin", ""),
        locale=None,
        page_context=None,
        received_at=time.monotonic(),
    )


@asynccontextmanager
async def _uploaded_file(request: Request, announced: int) -> AsyncIterator[tuple[BinaryIO, str]]:
    """The ``file`` part of a multipart upload, as the parser spooled it to a temporary file
    while it arrived (:attr:`_UploadParser.spool_max_size` at most in memory; closed and
    removed on exit), and its type; 413 once the body is :data:`MULTIPART_OVERHEAD` over the
    ``announced`` size (``attachments.create``'s, at most the platform's limit): a file
    slightly off is the store's 409 ``attachment_mismatch``. The storage reads it from there
    in pieces (``BlobStorage.put_file``): it is written to disk once.
    """
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise _bad_upload("send multipart/form-data with a 'file' part")
    parser = _UploadParser(
        request.headers,
        _limited(request, announced + MULTIPART_OVERHEAD),
        max_files=1,
        max_fields=8,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise _bad_upload(exc.message) from exc
    try:
        file = form.get("file")
        if isinstance(file, str) or file is None:
            raise _bad_upload("no 'file' part")
        mime_type = (file.content_type or "application/octet-stream").split(";", 1)[0].strip()
        yield file.file, mime_type
    finally:
        await form.close()


class _UploadParser(MultiPartParser):
    spool_max_size = 64 * 1024
    """What of a file part stays in memory before it goes to a temporary file (Starlette's
    default is a megabyte: a megabyte of every upload under way)."""


def _bad_upload(message: str) -> BadRequest:
    return BadRequest(
        "The upload is not valid.",
        code="invalid_upload",
        errors=[FieldError(field="file", message=message, type="value")],
    )
