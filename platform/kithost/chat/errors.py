"""The chat runtime's errors, and how the SDK's own exceptions become problem documents."""

from __future__ import annotations

from chatkit.errors import CustomStreamError
from chatkit.store import NotFoundError
from chatkit.types import ErrorEvent

from kithost.errors import BadRequest, Conflict, KithostError, NotFound


class ChatNotFound(NotFoundError):
    """What the store raises for anything the context's end user cannot see."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class ChatGone(CustomStreamError):
    """The chat's widget was deleted while the chat ran (its threads went with it): what
    the store raises instead of the write's failure. A response ends with ChatKit's error
    saying so, retry not offered (it could only fail); any other request is 404
    ``widget_not_found``, as the widget's visitor routes answer from then on."""

    MESSAGE = "This chat is no longer available."

    def __init__(self) -> None:
        super().__init__(self.MESSAGE, allow_retry=False)


GONE_EVENT = ErrorEvent(code="custom", message=ChatGone.MESSAGE, allow_retry=False)
"""The event ending a response whose widget or tenant was deleted meanwhile."""


def sse(error: ErrorEvent) -> bytes:
    """``error`` as the server-sent event a response ends with."""
    return b"data: " + error.model_dump_json().encode() + b"\n\n"


def thread_not_found() -> ChatNotFound:
    return ChatNotFound("thread_not_found", "No such thread.")


def item_not_found() -> ChatNotFound:
    return ChatNotFound("item_not_found", "No such item in this thread.")


def cursor_not_found() -> ChatNotFound:
    """A page asked for after an item or thread that is gone (deleted meanwhile): the
    client starts the list again rather than taking an empty page for its end."""
    return ChatNotFound("cursor_not_found", "The item this page starts after no longer exists.")


def attachment_not_found() -> ChatNotFound:
    return ChatNotFound("attachment_not_found", "No such attachment.")


def no_pending_tool_call() -> Conflict:
    """A client tool's output for a thread whose latest item is no call waiting for one
    (none was made, or another output answered it: ``chat.client_tools``)."""
    return Conflict(
        "The thread has no tool call waiting for an output.", code="no_pending_tool_call"
    )


def problem_for(exc: Exception) -> KithostError | None:
    """The problem an exception from ``ChatKitServer.process`` stands for; None for a bug."""
    if isinstance(exc, KithostError):
        return exc
    if isinstance(exc, ChatGone):
        return NotFound(ChatGone.MESSAGE, code="widget_not_found")
    if isinstance(exc, ChatNotFound):
        return NotFound(exc.detail, code=exc.code)
    if isinstance(exc, NotFoundError):
        return NotFound(str(exc) or "Not found.", code="not_found")
    if isinstance(exc, NotImplementedError):
        return BadRequest("This ChatKit request is not supported.", code="unsupported_request")
    if isinstance(exc, ValueError):
        return BadRequest(str(exc), code="invalid_chatkit_request")
    return None
