"""The answers an API process is streaming (:class:`OpenAnswers`, the chat runtime's): at
most ``KITHOST_MAX_OPEN_ANSWERS`` at once, and those of a tenant deleted meanwhile ended.

- An answer is a streamed ChatKit request (a message, a retry, a widget action, a client
  tool's output): counted from before anything is written until its response ends, however
  it ends (``endpoints``: its last event, the visitor gone, an error, a cancellation). The
  listing and reading requests stream nothing and are not counted. One more than the cap is
  refused with 503 ``server_busy`` and ``Retry-After``, nothing written and no quota spent:
  past its capacity a process slows every answer it streams (the first token past a second
  for every visitor: ``bench/README.md``), and refusing the newcomer keeps those answering
  while another process, or a try a few seconds later, takes it. A refused message to a
  thread is reported as that thread's failed response (``server.response.failed``,
  ``server_busy``); a new thread's has no thread to report on.
- Deleting a tenant ends its answers in every process: while answers are open the process
  asks every :data:`CHECK_SECONDS` which of their tenants are left (one read by primary
  key), and an answer whose tenant is gone writes nothing more (``SqlStore.gone``) and ends
  with ChatKit's error saying the chat is no longer available (``errors.ChatGone``, as when
  its widget is deleted): its stream's task is cancelled while it waits for the answer's
  next event, so the SDKs stop the model's stream as they do for a visitor who leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import structlog

from kithost.chat import repository
from kithost.chat.context import ChatContext
from kithost.chat.store import SqlStore
from kithost.db import Sessionmaker, only_reads, session_scope
from kithost.errors import ServiceUnavailable
from kithost.health.metrics import CHAT_OPEN_ANSWERS

log = structlog.get_logger(__name__)

CHECK_SECONDS = 2.0
"""How often a process with answers open checks that their tenants are still there: as
often as the config cache checks a widget it serves (``visitor.cache.REVALIDATE_SECONDS``),
so a deleted tenant's chats stop answering about when its widgets stop being served."""
RETRY_SECONDS = 5
"""The ``Retry-After`` of a refused answer: about what an answer takes to stream."""


def server_busy() -> ServiceUnavailable:
    return ServiceUnavailable(
        "This chat is answering as many visitors as it can; try again in a few seconds.",
        code="server_busy",
        headers={"Retry-After": str(RETRY_SECONDS)},
    )


class OpenAnswer:
    """One answer in progress; :meth:`close` gives its place back (once)."""

    __slots__ = ("_answers", "_closed", "cut", "store", "task", "tenant_id", "waiting")

    def __init__(self, answers: OpenAnswers, tenant_id: uuid.UUID, store: SqlStore) -> None:
        self._answers = answers
        self._closed = False
        self.tenant_id = tenant_id
        self.store = store
        self.task: asyncio.Task[Any] | None = None
        """The task streaming the response, once it streams (:meth:`streaming`)."""
        self.waiting = False
        """Whether that task is waiting for the answer's next event: where a cancellation
        ends the answer through the SDKs' own handling, not amid sending an event."""
        self.cut = False
        """Whether :meth:`_end` cancelled the task (:meth:`was_cut` tells it apart)."""

    def streaming(self) -> None:
        """The current task streams the response from now on."""
        self.task = asyncio.current_task()

    def was_cut(self) -> bool:
        """Whether the cancellation being handled is :meth:`_end`'s alone (then it no longer
        counts against the task: the stream ends with the error instead)."""
        task = self.task
        return self.cut and task is not None and task.uncancel() == 0

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._answers._close(self)

    def _end(self) -> None:
        """The tenant is gone: nothing more is written, and the response ends (now if it is
        waiting for the answer, else at the next check) with ``ChatGone``'s error."""
        store = self.store
        if not store.gone:
            log.info("chat.tenant_gone", tenant_id=str(self.tenant_id))
        store.gone = store.gone_untold = True
        if self.waiting and self.task is not None and not self.cut:
            self.cut = True
            self.task.cancel()


class OpenAnswers:
    """The process's answers in progress (see the module's docstring)."""

    def __init__(self, sessionmaker: Sessionmaker, limit: int) -> None:
        self.sessionmaker = sessionmaker
        self.limit = limit
        self._open: set[OpenAnswer] = set()
        self._none_open = asyncio.Event()
        """Set when the last open answer closes: the check stops."""
        self._checking: asyncio.Task[None] | None = None

    def open(self, context: ChatContext, store: SqlStore, thread_id: str | None) -> OpenAnswer:
        """A place for one more answer (``thread_id``: the thread it answers in, if it is
        not a new one); 503 ``server_busy`` when every place is taken."""
        if len(self._open) >= self.limit:
            log.warning("chat.server_busy", open_answers=len(self._open))
            if thread_id is not None:  # as the request names it (128 random bits): unread
                store.report(context, "response.failed", thread_id=thread_id, error="server_busy")
            raise server_busy()
        answer = OpenAnswer(self, context.tenant_id, store)
        self._open.add(answer)
        self._none_open.clear()
        CHAT_OPEN_ANSWERS.inc()
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check())
        return answer

    def _close(self, answer: OpenAnswer) -> None:
        self._open.discard(answer)
        if not self._open:
            self._none_open.set()
        CHAT_OPEN_ANSWERS.dec()

    async def _check(self) -> None:
        """While answers are open, end those whose tenant is gone."""
        while self._open:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CHECK_SECONDS):
                    await self._none_open.wait()
            tenants = {answer.tenant_id for answer in self._open}
            if not tenants:
                return
            try:
                async with session_scope(self.sessionmaker) as session:
                    await only_reads(session)
                    left = await repository.tenants_left(session, tenants)
            except Exception:  # the database away: the answers' own writes will say so
                log.warning("chat.tenant_check_failed", exc_info=True)
                continue
            for answer in [a for a in self._open if a.tenant_id not in left]:
                answer._end()

    async def aclose(self) -> None:
        """Stop checking (the app's lifespan ends; its answers have ended or are cut off)."""
        checking = self._checking
        if checking is not None and not checking.done():
            checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checking
