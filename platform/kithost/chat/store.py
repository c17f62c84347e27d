"""The SQL ``Store`` and ``AttachmentStore`` the ChatKit server runs on.

- Every method runs its own short unit of work (:meth:`SqlStore.unit`): a response streams
  for seconds, and no transaction (on SQLite: no write lock) may stay open that long. Each
  method is atomic; the SDK's sequence of calls is what it is with any store. A new thread
  is written with the next unit of work (its first message), so that ``thread.created``
  streams without waiting for a write. A user's message (with its new thread) is written
  once the answer's first token is out (:meth:`SqlStore.release`), so that neither the
  model's request nor that token waits for a write; every later unit of work, and the end
  of the response (:meth:`SqlStore.settled`), waits for that write first, so nothing reads
  past it and a failed write ends the response with an error.
- ``load_thread`` reads the thread's latest ``read_ahead`` items with it: a response's
  history then costs no second unit of work.
- Every query is scoped by the context's tenant, widget and end user: another end user's
  thread, item or attachment is :class:`~kithost.chat.errors.ChatNotFound`, never data.
- Ids have 128 random bits (the SDK's defaults have 32).
- Payloads are the SDK's models as JSON with ``payload_version`` (the layout they were
  written in): when an SDK upgrade changes a model incompatibly, bump it and upgrade older
  rows where they are read.
- Image previews are stored without their token and signed afresh for the owner on read.
- An item the model must never read (a message a guardrail refused, the refusal answering
  it: ``ChatServer``) carries :data:`REFUSED` in its payload, written with the item itself
  (a user message is written after its check), so no request reads it unmarked;
  :attr:`SqlStore.refused` holds the ids of the marked items the store has read or written.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, TypeVar

import structlog
from chatkit.store import AttachmentStore, Store, StoreItemType
from chatkit.types import (
    AssistantMessageItem,
    Attachment,
    AttachmentCreateParams,
    AttachmentUploadDescriptor,
    ClientToolCallItem,
    FileAttachment,
    ImageAttachment,
    Page,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
)
from pydantic import AnyUrl, TypeAdapter
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.analytics.facts import FactBuffer, fact
from kithost.chat import repository
from kithost.chat.attachments import AttachmentRules, AttachmentUrls
from kithost.chat.context import ChatContext
from kithost.chat.errors import (
    ChatGone,
    ChatNotFound,
    attachment_not_found,
    cursor_not_found,
    item_not_found,
    no_pending_tool_call,
    thread_not_found,
)
from kithost.chat.repository import Order
from kithost.db import Sessionmaker, commit_asynchronously, only_reads, session_scope
from kithost.errors import Conflict, invalid_field
from kithost.kit.schemas import NUL, has_nul
from kithost.kit.tokens import random_token
from kithost.kit.visible import INVISIBLE_MESSAGE, INVISIBLE_TYPE, has_invisible
from kithost.models import ChatAttachment, ChatItem, ChatThread
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.storage import BlobStorage, blob_key, opened
from kithost.webhooks import service as webhooks

log = structlog.get_logger(__name__)
PAYLOAD_VERSION = 1
QUOTA_WINDOW_HOURS = 24
QUOTA_USE_PREFIX = "qu_"
"""The ids of quota uses that are not a user message's (``ChatQuotaUse``)."""
ID_PREFIXES: dict[StoreItemType, str] = {
    "thread": "thr",
    "message": "msg",
    "tool_call": "tc",
    "task": "tsk",
    "workflow": "wf",
    "attachment": "atc",
    "sdk_hidden_context": "shcx",
}
MAX_PAGE = 100
REFUSED = "kithost_refused"
"""In an item's payload (beside the SDK's fields, which its models ignore): the model never
reads the item (:attr:`SqlStore.refused`)."""
T = TypeVar("T")

_ITEM: TypeAdapter[ThreadItem] = TypeAdapter(ThreadItem)
_INSERT_ITEM = insert(ChatItem)
_ATTACHMENT: TypeAdapter[Attachment] = TypeAdapter(Attachment)


def new_id(item_type: StoreItemType) -> str:
    """``thr_…``, ``msg_…``: the SDK's prefixes, then 128 random bits."""
    return random_token(ID_PREFIXES[item_type] + "_", 16)


class SqlStore(Store[ChatContext]):
    def __init__(
        self,
        sessionmaker: Sessionmaker,
        storage: BlobStorage,
        urls: AttachmentUrls,
        facts: FactBuffer,
        *,
        read_ahead: int = 0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.facts = facts
        """The process's analytics buffer: facts go in once what they report has committed."""
        self.storage = storage
        self.urls = urls
        self.read_ahead = read_ahead
        """How many of its latest items ``load_thread`` reads with a thread (a response's
        history); 0 for requests that answer nothing."""
        self._latest: dict[tuple[uuid.UUID, uuid.UUID, str, str], Page[ThreadItem]] = {}
        """Per thread, the newest items as last read (a store lives for one request), newest
        first: the SDK reads them again right after the history is loaded, and a new thread's
        are known without reading. Dropped on writes, except additions to a whole list."""
        self._new: set[str] = set()
        """Ids of threads this store generated and has not written yet."""
        self._unwritten: dict[str, tuple[ChatThread, ChatContext]] = {}
        """New threads, written with the next unit of work (with their first message) rather
        than in one of their own before ``thread.created`` can stream."""
        self._writing: asyncio.Task[None] | None = None
        """The user's message, written behind the response (see above) once released."""
        self._released = asyncio.Event()
        """Set by :meth:`release`; a new one for each write."""
        self._sent_with: dict[str, int] = {}
        """Per user message this store wrote under a quota, how many the end user had sent
        within the window with it (:meth:`messages_sent`)."""
        self.gone = False
        """Whether the widget was deleted while the chat ran (:class:`ChatGone` was raised),
        its tenant (``answers.OpenAnswers`` found it) or its thread (a write found it gone:
        :meth:`_told_at_the_end`): there is nothing left to write the rest of the response
        to."""
        self.gone_untold = False
        """Whether the widget, tenant or thread was found gone and the response has not said
        so yet."""
        self._created_attachments: dict[str, dict[str, Any]] = {}
        """Attachments ``SqlAttachmentStore.create_attachment`` wrote, with their payloads:
        the SDK's ``save_attachment`` that follows has nothing to write."""
        self.refused: set[str] = set()
        """Ids of the items the model never reads: those read marked :data:`REFUSED`, and
        those the server adds before it writes them (an item written, or saved again, is
        marked while its id is here)."""

    @asynccontextmanager
    async def unit(
        self, context: ChatContext, *, writes: bool = False, one_read: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A unit of work after the write behind the response (:meth:`settled`);
        ``one_read``: it runs one statement that only reads (:func:`~kithost.db.only_reads`)."""
        await self.settled()
        async with self._unit(context, writes=writes, one_read=one_read) as session:
            yield session

    def release(self) -> None:
        """Let the write behind the response start (the first token is out, or the response
        ends without one)."""
        self._released.set()

    async def settled(self) -> None:
        """Wait for the write behind the response, if there is one; raise its error (once)."""
        writing = self._writing
        if writing is None:
            return
        self.release()
        try:
            await asyncio.shield(writing)  # a cancelled response still lets it finish
        finally:
            if writing.done():  # else the caller was cancelled: the next one waits in turn
                self._writing = None

    @asynccontextmanager
    async def _unit(
        self, context: ChatContext, *, writes: bool = False, one_read: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A unit of work that first writes the threads created since the last one.

        One that ``writes`` commits without waiting for the disk (:func:`~kithost.db.
        commit_asynchronously`): a crash may lose the last moments of a chat, never leave
        it inconsistent.
        """
        written = list(self._unwritten.values())
        try:
            async with session_scope(self.sessionmaker) as session:
                await rls.set_tenant(session, context.tenant_id)
                if writes or written:
                    await commit_asynchronously(session)
                elif one_read:
                    await only_reads(session)
                for row, _ in written:
                    session.add(row)
                if written:
                    await session.flush()
                yield session
        except (IntegrityError, ChatNotFound) as exc:
            if await self._widget_gone(context):
                raise ChatGone from exc
            raise
        for row, context in written:
            self._unwritten.pop(row.id, None)
            self._new.discard(row.id)
            self.report(context, "thread.created", thread_id=row.id)

    @contextmanager
    def _told_at_the_end(self, thread_id: str | None = None) -> Iterator[None]:
        """Around a write of the response (the SDK's ``save_thread``, ``add_thread_item``,
        …): the first to find the widget deleted does not stop the response midway (the SDK
        would leave the model's stream running, abandoned); it runs on, writing nothing,
        and tells the visitor at its end (``ChatServer``, :attr:`gone_untold`). So does the
        first write of an item of ``thread_id`` (which the response loaded) to find the
        thread gone: retention's purge, staff or the visitor elsewhere deleted it since."""
        try:
            yield
        except ChatGone:
            self.gone_untold = True
        except ChatNotFound as exc:
            if thread_id is None or exc.code != "thread_not_found":
                raise
            if not self.gone:
                log.info("chat.thread_gone", thread_id=thread_id)
            self.gone = self.gone_untold = True

    async def _widget_gone(self, context: ChatContext) -> bool:
        """Whether the context's widget has been deleted (a write failed, or the thread is
        missing: the deletion took the widget's threads with it); from then on the store's
        writes do nothing (:attr:`gone`)."""
        async with session_scope(self.sessionmaker) as session:
            await rls.set_tenant(session, context.tenant_id)
            await only_reads(session)
            exists = await repository.widget_exists(session, context)
        if not exists and not self.gone:
            self.gone = True
            log.info("chat.widget_gone", widget_id=str(context.widget_id))
        return not exists

    def report(self, context: ChatContext, name: str, **data: Any) -> None:
        """Report ``server.<name>`` about the context's end user (see ``analytics.facts``);
        nothing for a preview."""
        if context.widget.preview:
            return
        self.facts.add(
            context.tenant_id, context.widget_id, fact(name, context.end_user_id, **data)
        )

    def generate_thread_id(self, context: ChatContext) -> str:
        thread_id = new_id("thread")
        self._new.add(thread_id)
        return thread_id

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: ChatContext
    ) -> str:
        return new_id(item_type)

    # -- threads ---------------------------------------------------------------------------

    async def load_thread(self, thread_id: str, context: ChatContext) -> ThreadMetadata:
        limit = self.read_ahead
        async with self.unit(context, one_read=True) as session:
            if limit:
                payload, items = await repository.thread_with_items(
                    session, context, thread_id, limit + 1
                )
            else:
                row = await repository.thread(session, context, thread_id)
                payload, items = (None if row is None else row.payload), []
        if payload is not None and limit:
            # What this request read already stays what it knows: a client tool's output
            # checked against the call it found pending (``client_tools.check_output``) must
            # not find it answered by another output in the SDK's next read (the SDK raised);
            # saving it answers that the way outputs sent at once are (``_save_item``).
            self._latest.setdefault(
                _key(context, thread_id), self._items_page(items, limit, context)
            )
        if payload is None:
            raise thread_not_found()
        return ThreadMetadata.model_validate(payload)

    async def save_thread(self, thread: ThreadMetadata, context: ChatContext) -> None:
        if self.gone:
            return
        with self._told_at_the_end():
            await self._save_thread(thread, context)

    async def _save_thread(self, thread: ThreadMetadata, context: ChatContext) -> None:
        payload = _storable(thread.model_dump(mode="json", exclude={"items"}))
        if thread.id in self._new:
            new = _thread_row(thread, payload, context)
            self._unwritten[thread.id] = (new, context)
            # A new thread: every item will pass through here (saved again: kept so far).
            self._latest.setdefault(_key(context, thread.id), Page())
            return
        async with self.unit(context, writes=True) as session:
            if await repository.replace_thread(
                session, context, thread.id, payload, PAYLOAD_VERSION
            ):
                return
            if await session.get(ChatThread, thread.id) is not None:  # someone else's
                raise thread_not_found()
            # An id the caller chose (the SDK's generate_thread_id, overridden).
            session.add(_thread_row(thread, payload, context))
            try:
                await session.flush()
            except IntegrityError as exc:  # another tenant's, which row-level security hid
                raise thread_not_found() from exc
        self.report(context, "thread.created", thread_id=thread.id)

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: ChatContext
    ) -> Page[ThreadMetadata]:
        limit = _page_size(limit)
        async with self.unit(context) as session:
            rows = await repository.threads(session, context, after, limit + 1, _order(order))
        if rows is None:
            raise cursor_not_found()
        page = [ThreadMetadata.model_validate(row.payload) for row in rows[:limit]]
        return _page(page, has_more=len(rows) > limit)

    async def delete_thread(self, thread_id: str, context: ChatContext) -> None:
        self._latest.pop(_key(context, thread_id), None)
        async with self.unit(context, writes=True) as session:
            if not await repository.thread_exists(session, context, thread_id):
                raise thread_not_found()
            _, keys = await repository.delete_threads(
                session, repository.owned(ChatThread, context) & (ChatThread.id == thread_id)
            )
        await self.storage.delete(keys)

    # -- items -----------------------------------------------------------------------------

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: ChatContext,
    ) -> Page[ThreadItem]:
        limit = _page_size(limit)
        latest = self._latest.get(_key(context, thread_id))
        if (
            after is None
            and order == "desc"
            and latest is not None
            and (limit <= len(latest.data) or not latest.has_more)
        ):
            more = len(latest.data) > limit or latest.has_more
            return _page(latest.data[:limit], has_more=more)
        async with self.unit(context) as session:
            rows = await repository.items(
                session, context, thread_id, after, limit + 1, _order(order)
            )
            exists = bool(rows) or await repository.thread_exists(session, context, thread_id)
        if not exists:
            raise thread_not_found()
        if rows is None:
            raise cursor_not_found()
        result = self._items_page([row.payload for row in rows], limit, context)
        if after is None and order == "desc":
            self._latest[_key(context, thread_id)] = result
        return result

    async def add_thread_item(self, thread_id: str, item: ThreadItem, context: ChatContext) -> None:
        if self.gone:
            return
        with self._told_at_the_end(thread_id):
            await self._add_thread_item(thread_id, item, context)

    async def _add_thread_item(
        self, thread_id: str, item: ThreadItem, context: ChatContext
    ) -> None:
        latest = self._latest.pop(_key(context, thread_id), None)
        await self.settled()
        if isinstance(item, UserMessageItem):
            # The SDK asks the model next: written behind the answer (see above).
            self._released = asyncio.Event()  # the previous write has settled
            self._writing = asyncio.create_task(self._add_released(thread_id, item, context))
        else:
            await self._add_item(thread_id, item, context)
        if latest is not None:  # still the latest items, newest first
            data = [self._present(item, context), *latest.data]
            self._latest[_key(context, thread_id)] = Page(data=data, has_more=latest.has_more)

    async def _add_released(self, thread_id: str, item: ThreadItem, context: ChatContext) -> None:
        await self._released.wait()
        if not self.gone:  # else its tenant was deleted meanwhile (``answers``)
            with self._told_at_the_end(thread_id):
                await self._add_item(thread_id, item, context)

    async def _add_item(self, thread_id: str, item: ThreadItem, context: ChatContext) -> None:
        async with self._unit(context, writes=True) as session:
            quota = _quota(context)
            if isinstance(item, UserMessageItem) and quota is not None:
                # Counted where it is written, the end user held: messages sent at once take
                # turns, each counting those written before it (:meth:`messages_sent`); one
                # over the quota is not answered, and counts for nothing.
                await repository.lock_end_user(session, context)
                before = await repository.count_quota_uses(session, context, quota_window_start())
                self._sent_with[item.id] = before + 1
                if before < quota:
                    await repository.add_quota_use(
                        session, context, item.id, "message", quota_window_start()
                    )
            await self._insert_item(session, thread_id, item, context)
        if isinstance(item, UserMessageItem):
            self.report(context, "message.received", thread_id=thread_id)

    async def save_item(self, thread_id: str, item: ThreadItem, context: ChatContext) -> None:
        if self.gone:
            return
        with self._told_at_the_end(thread_id):
            await self._save_item(thread_id, item, context)

    async def _save_item(self, thread_id: str, item: ThreadItem, context: ChatContext) -> None:
        self._latest.pop(_key(context, thread_id), None)
        call = isinstance(item, ClientToolCallItem)
        async with self.unit(context, writes=True) as session:
            row = await repository.item(session, context, thread_id, item.id, lock=call)
            if row is None:
                await self._insert_item(session, thread_id, item, context)
            else:
                if call and row.kind == item.type and row.payload.get("status") != "pending":
                    # Answered by another output meanwhile (its row was locked till then).
                    raise no_pending_tool_call()
                row.payload, row.payload_version = self._stored(item), PAYLOAD_VERSION
                row.kind = item.type  # a replacement may be of another type

    async def load_item(self, thread_id: str, item_id: str, context: ChatContext) -> ThreadItem:
        async with self.unit(context) as session:
            row = await repository.item(session, context, thread_id, item_id)
        if row is None:
            raise item_not_found()
        return self._read(row.payload, context)

    async def delete_thread_item(self, thread_id: str, item_id: str, context: ChatContext) -> None:
        if self.gone:
            return
        with self._told_at_the_end(thread_id):
            await self._delete_thread_item(thread_id, item_id, context)

    async def _delete_thread_item(self, thread_id: str, item_id: str, context: ChatContext) -> None:
        self._latest.pop(_key(context, thread_id), None)
        async with self.unit(context, writes=True) as session:
            await repository.delete_item(session, context, thread_id, item_id)

    async def _insert_item(
        self, session: AsyncSession, thread_id: str, item: ThreadItem, context: ChatContext
    ) -> None:
        # A thread this unit of work has just written needs no touch (see :meth:`unit`).
        new = thread_id in self._unwritten
        if not new and not await repository.touch_thread(session, context, thread_id):
            raise thread_not_found()
        # A statement, not an object for the session to flush: the same row, for less work.
        await session.execute(
            _INSERT_ITEM,
            {
                "id": item.id,
                "thread_id": thread_id,
                "tenant_id": context.tenant_id,
                "widget_id": context.widget_id,
                "end_user_id": context.end_user_id,
                "kind": item.type,
                "payload": self._stored(item),
                "payload_version": PAYLOAD_VERSION,
                "created_at": _aware(item.created_at),
            },
        )
        if isinstance(item, UserMessageItem | AssistantMessageItem) and not context.widget.preview:
            data = _message(item, context)
            events = [("conversation.message", data)]
            if new and isinstance(item, UserMessageItem):
                events.insert(0, ("conversation.started", data))
            await webhooks.emit_all(session, context.tenant_id, events)

    async def messages_sent(self, message: UserMessageItem, context: ChatContext) -> int:
        """How many messages the end user has sent within the quota's window as the quota
        counts them (:class:`~kithost.models.ChatQuotaUse`), ``message`` (which this store
        wrote) included: those counted before it was written, and itself (messages sent at
        once are not counted by one another both ways)."""
        await self.settled()
        counted = self._sent_with.pop(message.id, None)
        if counted is not None:
            return counted
        async with self.unit(context) as session:
            return await repository.count_quota_uses(session, context, quota_window_start())

    async def spend_quota(self, kind: str, context: ChatContext) -> bool:
        """Count one more message of the end user's (``kind``: ``retry``, ``action``,
        ``tool_output``; a user message is counted as it is written), unless they have sent
        as many as the widget's quota allows within its window: whether it was counted (it
        may be answered). Counted with the end user held, as user messages are."""
        quota = _quota(context)
        if quota is None:
            return True
        async with self.unit(context, writes=True) as session:
            await repository.lock_end_user(session, context)
            since = quota_window_start()
            if await repository.count_quota_uses(session, context, since) >= quota:
                return False
            await repository.add_quota_use(
                session, context, random_token(QUOTA_USE_PREFIX, 16), kind, since
            )
        return True

    async def set_feedback(
        self, thread_id: str, item_ids: list[str], kind: str, context: ChatContext
    ) -> int:
        """Record the end user's feedback on items of the thread; how many it applied to.

        The ids come from the visitor unchecked: only those of the thread's items count. The
        tenant's webhook names only those, and feedback that applied to nothing (ids the
        visitor made up) is neither announced nor reported, or any visitor could fill the
        tenant's feedback figures. (The endpoint bounds how many ids a request may name.)"""
        async with self.unit(context, writes=True) as session:
            if not await repository.thread_exists(session, context, thread_id):
                raise thread_not_found()
            applied = await repository.set_feedback(session, context, thread_id, item_ids, kind)
            if not applied:
                return 0
            applied.sort(key=item_ids.index)  # as the visitor named them
            data = {"thread_id": thread_id, "item_ids": applied, "kind": kind}
            await webhooks.emit(session, context.tenant_id, "feedback.created", data)
        self.report(context, "feedback", thread_id=thread_id, kind=kind, items=len(applied))
        return len(applied)

    # -- attachment metadata ---------------------------------------------------------------

    async def save_attachment(self, attachment: Attachment, context: ChatContext) -> None:
        """Write the attachment; one a message carries stays that message's: binding it to
        another thread is 409 ``attachment_in_use`` (two messages at once may both have found
        it unsent, ``attachable``; the row is locked, so the second to get here finds it
        bound), and binding one deleted meanwhile is 404 ``attachment_not_found`` (it is not
        written again, without its bytes)."""
        payload = _stored_attachment(attachment)
        if self._created_attachments.pop(attachment.id, None) == payload:
            return  # as create_attachment wrote it, a moment ago
        async with self.unit(context, writes=True) as session:
            row = await session.get(
                ChatAttachment, attachment.id, with_for_update=True, populate_existing=True
            )
            if row is None:
                if attachment.thread_id is not None:
                    raise attachment_not_found()
                session.add(_attachment_row(attachment, payload, context))
                return
            if not _owns(row, context):
                raise attachment_not_found()
            if row.thread_id not in (None, attachment.thread_id):
                raise _in_use()
            row.thread_id, row.payload = attachment.thread_id, payload
            try:
                await session.flush()
            except IntegrityError as exc:  # its message's thread was deleted meanwhile
                raise thread_not_found() from exc

    async def add_unsent_attachment(
        self, attachment: Attachment, context: ChatContext, check: Callable[[int], None]
    ) -> None:
        """Write the end user's new attachment once ``check`` has passed the number of their
        attachments no message carries (it raises to refuse). Counted and written in one unit
        of work with the end user held (``repository.lock_end_user``): of requests at once,
        no more get in than the count allows."""
        payload = _stored_attachment(attachment)
        async with self.unit(context, writes=True) as session:
            await repository.lock_end_user(session, context)
            check(await repository.count_unsent_attachments(session, context))
            session.add(_attachment_row(attachment, payload, context))
        self._created_attachments[attachment.id] = payload

    async def load_attachment(self, attachment_id: str, context: ChatContext) -> Attachment:
        async with self.unit(context) as session:
            row = await repository.attachment(session, context, attachment_id)
        if row is None:
            raise attachment_not_found()
        return self.present_attachment(_ATTACHMENT.validate_python(row.payload), context)

    async def delete_attachment(self, attachment_id: str, context: ChatContext) -> None:
        async with self.unit(context, writes=True) as session:
            await repository.delete_attachment(session, context, attachment_id)

    async def attachable(self, attachment_id: str, context: ChatContext) -> ChatAttachment:
        """The end user's uploaded attachment that no message carries yet."""
        async with self.unit(context) as session:
            row = await repository.attachment(session, context, attachment_id)
        if row is None:
            raise attachment_not_found()
        if row.uploaded_at is None:
            raise Conflict("Upload the attachment first.", code="attachment_not_uploaded")
        if row.thread_id is not None:
            raise _in_use()
        return row

    # -- presentation ----------------------------------------------------------------------

    def _items_page(
        self, payloads: Sequence[dict[str, Any]], limit: int, context: ChatContext
    ) -> Page[ThreadItem]:
        page = [self._read(p, context) for p in payloads[:limit]]
        return _page(page, has_more=len(payloads) > limit)

    def _read(self, payload: dict[str, Any], context: ChatContext) -> ThreadItem:
        item = self._present(_ITEM.validate_python(payload), context)
        if payload.get(REFUSED):
            self.refused.add(item.id)
        return item

    def _stored(self, item: ThreadItem) -> dict[str, Any]:
        payload = _stored_item(item)
        if item.id in self.refused:
            payload[REFUSED] = True
        return payload

    def _present(self, item: ThreadItem, context: ChatContext) -> ThreadItem:
        if isinstance(item, UserMessageItem) and item.attachments:
            attachments = [self.present_attachment(a, context) for a in item.attachments]
            return item.model_copy(update={"attachments": attachments})
        return item

    def present_attachment(self, attachment: Attachment, context: ChatContext) -> Attachment:
        if not isinstance(attachment, ImageAttachment):
            return attachment
        url = self.urls.url(
            "preview", context.widget.public_key, attachment.id, context.end_user_id
        )
        return attachment.model_copy(update={"preview_url": AnyUrl(url)})


class SqlAttachmentStore(AttachmentStore[ChatContext]):
    """Two-phase uploads: ``attachments.create`` answers a signed upload URL; the bytes go
    to :meth:`upload`; :meth:`delete_attachment` removes the row and the bytes."""

    def __init__(self, store: SqlStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def generate_attachment_id(self, mime_type: str, context: ChatContext) -> str:
        return new_id("attachment")

    async def create_attachment(
        self, input: AttachmentCreateParams, context: ChatContext
    ) -> Attachment:
        """A new attachment of the end user's (its row is written here; the SDK's
        ``save_attachment`` that follows finds it), refused unless the widget's rules allow
        it, its name holds no invisible character (control, bidi override, …: tenants' staff
        read it in the conversations they review; 422 on ``params.name``, as a thread's
        title) and the end user holds fewer than :data:`~kithost.chat.attachments.MAX_UNSENT`
        attachments no message carries (:meth:`SqlStore.add_unsent_attachment`)."""
        rules = AttachmentRules.of(context.widget.widget_config.chatkit, self.settings)
        rules.check(input.mime_type, input.size)
        if has_invisible(input.name):
            raise invalid_field("params.name", INVISIBLE_MESSAGE, INVISIBLE_TYPE)
        attachment_id = self.generate_attachment_id(input.mime_type, context)
        urls, public_key = self.store.urls, context.widget.public_key
        fields: dict[str, Any] = {
            "id": attachment_id,
            "name": input.name[:255],
            "mime_type": input.mime_type,
            "upload_descriptor": AttachmentUploadDescriptor(
                url=AnyUrl(urls.url("upload", public_key, attachment_id, context.end_user_id)),
                method="POST",
            ),
            "metadata": {"size": input.size},
        }
        attachment: Attachment
        if input.mime_type.startswith("image/"):
            attachment = self.store.present_attachment(
                ImageAttachment(
                    preview_url=AnyUrl(urls.bare_url("preview", public_key, attachment_id)),
                    **fields,
                ),
                context,
            )
        else:
            attachment = FileAttachment(**fields)
        await self.store.add_unsent_attachment(attachment, context, rules.check_unsent)
        return attachment

    async def delete_attachment(self, attachment_id: str, context: ChatContext) -> None:
        """Delete an attachment no message carries: its row (the SDK's deletion of it that
        follows finds none) and, once that has committed, its bytes. The row is locked
        first, as :meth:`upload` locks it: an upload under way ends before (and its bytes
        are deleted), or after, finding no row and writing nothing."""
        async with self.store.unit(context, writes=True) as session:
            row = await repository.attachment(session, context, attachment_id, lock=True)
            if row is None:
                raise attachment_not_found()
            if row.thread_id is not None:
                raise Conflict(
                    "The attachment is part of a message; delete the thread instead.",
                    code="attachment_in_use",
                )
            await session.delete(row)
        await self.store.storage.delete([blob_key(row.tenant_id, row.widget_id, row.id)])

    async def announced_size(self, attachment_id: str, context: ChatContext) -> int:
        """The size ``attachments.create`` announced for the end user's attachment that
        awaits its bytes: what its upload is read up to (:meth:`upload` checks it again)."""
        async with self.store.unit(context) as session:
            row = await repository.attachment(session, context, attachment_id)
        if row is None:
            raise attachment_not_found()
        if row.uploaded_at is not None:
            raise _uploaded()
        return row.size

    async def upload(
        self, attachment_id: str, file: BinaryIO, mime_type: str, context: ChatContext
    ) -> Attachment:
        """Store ``file`` (an open binary file, its size found by seeking to its end, not by
        reading it) as the bytes of a created attachment, once (read in pieces); refuse
        anything it did not declare (another type, or a size other than announced: staff and
        the model read that size, and previews send it as their ``Content-Length``). The row
        stays locked while they are written (see :meth:`delete_attachment`)."""
        async with self.store.unit(context, writes=True) as session:
            row = await repository.attachment(session, context, attachment_id, lock=True)
            if row is None:
                raise attachment_not_found()
            if row.uploaded_at is not None:
                raise _uploaded()
            size = await asyncio.to_thread(file.seek, 0, os.SEEK_END)
            if size != row.size or mime_type != row.mime_type:
                raise Conflict(
                    "The file is not the one announced by attachments.create.",
                    code="attachment_mismatch",
                )
            await self.store.storage.put_file(blob_key(row.tenant_id, row.widget_id, row.id), file)
            attachment = _ATTACHMENT.validate_python(row.payload).model_copy(
                update={"upload_descriptor": None}
            )
            row.payload, row.uploaded_at = _stored_attachment(attachment), utcnow()
        return self.store.present_attachment(attachment, context)

    async def content(self, attachment_id: str, context: ChatContext) -> tuple[bytes, str]:
        """The bytes and MIME type of the end user's uploaded attachment."""
        row = await self._uploaded_row(attachment_id, context)
        data = await self.store.storage.get(blob_key(row.tenant_id, row.widget_id, row.id))
        if data is None:
            raise attachment_not_found()
        return data, row.mime_type

    async def pieces(self, attachment_id: str, context: ChatContext) -> StoredFile:
        """The end user's uploaded attachment in pieces of at most ``CHUNK_BYTES``, its
        first read already: a file that is not there is :func:`attachment_not_found` here,
        before any response starts."""
        row = await self._uploaded_row(attachment_id, context)
        key = blob_key(row.tenant_id, row.widget_id, row.id)
        try:
            pieces = await opened(self.store.storage, key)
        except FileNotFoundError as exc:
            raise attachment_not_found() from exc
        return StoredFile(pieces, row.mime_type, row.size)

    async def _uploaded_row(self, attachment_id: str, context: ChatContext) -> ChatAttachment:
        async with self.store.unit(context) as session:
            row = await repository.attachment(session, context, attachment_id)
        if row is None or row.uploaded_at is None:
            raise attachment_not_found()
        return row


@dataclass(frozen=True)
class StoredFile:
    """An uploaded attachment's bytes as they are read, its MIME type and its size (checked
    against the announced one when it was uploaded)."""

    pieces: AsyncIterator[bytes]
    mime_type: str
    size: int


def _key(context: ChatContext, thread_id: str) -> tuple[uuid.UUID, uuid.UUID, str, str]:
    """What the recent-items cache is keyed by: the thread as the context's end user sees it
    (a store object used with two contexts never serves one's items to the other)."""
    return context.tenant_id, context.widget_id, context.end_user_id, thread_id


def _thread_row(
    thread: ThreadMetadata, payload: dict[str, Any], context: ChatContext
) -> ChatThread:
    return ChatThread(
        id=thread.id,
        tenant_id=context.tenant_id,
        widget_id=context.widget_id,
        end_user_id=context.end_user_id,
        payload=payload,
        payload_version=PAYLOAD_VERSION,
        created_at=_aware(thread.created_at),  # listed by it, as items are (not write time)
        preview=context.widget.preview,
    )


def quota_window_start() -> datetime:
    """Since when the messages counted by ``messages_per_user_per_day`` were sent."""
    return datetime.now(UTC) - timedelta(hours=QUOTA_WINDOW_HOURS)


def _quota(context: ChatContext) -> int | None:
    return context.widget.widget_config.agent.messages_per_user_per_day


def _attachment_row(
    attachment: Attachment, payload: dict[str, Any], context: ChatContext
) -> ChatAttachment:
    return ChatAttachment(
        id=attachment.id,
        tenant_id=context.tenant_id,
        widget_id=context.widget_id,
        end_user_id=context.end_user_id,
        thread_id=attachment.thread_id,
        mime_type=attachment.mime_type,
        size=int((attachment.metadata or {}).get("size", 0)),
        payload=payload,
        payload_version=PAYLOAD_VERSION,
    )


def _uploaded() -> Conflict:
    return Conflict("This attachment is already uploaded.", code="attachment_uploaded")


def _in_use() -> Conflict:
    return Conflict("This attachment is already in a message.", code="attachment_in_use")


def _aware(moment: datetime) -> datetime:
    """The SDK stamps items with naive local time (``datetime.now()``): as UTC."""
    return moment.astimezone(UTC)


def _owns(row: ChatAttachment, context: ChatContext) -> bool:
    return (row.tenant_id, row.widget_id, row.end_user_id) == (
        context.tenant_id,
        context.widget_id,
        context.end_user_id,
    )


def _message(item: UserMessageItem | AssistantMessageItem, context: ChatContext) -> dict[str, Any]:
    """``conversation.message`` (and a new thread's first one, ``conversation.started``). A
    verified end user is named (the tenant's own id); an anonymous visitor is not (a device
    id is a credential)."""
    end_user = context.end_user_id
    if isinstance(item, UserMessageItem):
        role, text = "user", "".join(p.text for p in item.content if p.type == "input_text")
    else:
        role, text = "assistant", "".join(part.text for part in item.content)
    return {
        "thread_id": item.thread_id,
        "widget_id": str(context.widget_id),
        "end_user": end_user if end_user.startswith("u:") else None,
        "item_id": item.id,
        "created_at": _aware(item.created_at).isoformat(),
        "role": role,
        "text": text,
    }


def _stored_item(item: ThreadItem) -> dict[str, Any]:
    if isinstance(item, UserMessageItem) and item.attachments:
        item = item.model_copy(update={"attachments": [_bare(a) for a in item.attachments]})
    return _storable(item.model_dump(mode="json"))


def _stored_attachment(attachment: Attachment) -> dict[str, Any]:
    return _storable(_bare(attachment).model_dump(mode="json"))


def _storable(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with every NUL character as U+FFFD: PostgreSQL's JSONB refuses NUL, and
    a model or tool may answer with one (visitors may not: the endpoint refuses it)."""
    return _without_nul(payload) if has_nul(payload) else payload


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(NUL, "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [_without_nul(entry) for entry in value]
    return value


def _bare(attachment: Attachment) -> Attachment:
    """The attachment without the token of its preview URL (signed again on every read)."""
    if not isinstance(attachment, ImageAttachment):
        return attachment
    bare = str(attachment.preview_url).split("?", 1)[0]
    return attachment.model_copy(update={"preview_url": AnyUrl(bare)})


def _order(order: str) -> Order:
    return "asc" if order == "asc" else "desc"


def _page_size(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE))


def _page(data: list[T], *, has_more: bool) -> Page[T]:
    return Page(data=data, has_more=has_more, after=_last_id(data) if has_more else None)


def _last_id(data: list[Any]) -> str | None:
    return str(data[-1].id) if data else None
