"""Reading, exporting and deleting a tenant's conversations; every transcript read and every
deletion is in the audit log (who, which thread)."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth.principals import TenantAccess
from kithost.auth.scopes import Scope
from kithost.chat import service as chat
from kithost.conversations import repository
from kithost.conversations.schemas import (
    Answer,
    Conversation,
    ConversationFilters,
    ConversationPage,
    ConversationQuery,
    ConversationSettings,
    Review,
    ReviewUpdate,
    Transcript,
    TranscriptItem,
    TranscriptPage,
)
from kithost.db import Sessionmaker, session_scope
from kithost.errors import FieldError, Forbidden, NotFound
from kithost.kit import cursors
from kithost.kit.keys import Keys
from kithost.kit.pseudonyms import exported_end_user
from kithost.models import ChatItem, ConversationReview
from kithost.widgets.service import get_widget


def settings_of(access: TenantAccess) -> ConversationSettings:
    return ConversationSettings(editors_may_read=access.tenant.editors_read_conversations)


def change_settings(
    session: AsyncSession, access: TenantAccess, wanted: ConversationSettings
) -> ConversationSettings:
    """Let editors read conversations, or stop them; audited. Only a caller who reads them
    may open them to others (nobody grants beyond their own scopes)."""
    if wanted.editors_may_read and Scope.conversations_read not in access.scopes:
        message = f"you do not hold {Scope.conversations_read.value}"
        raise Forbidden(
            f"Cannot open conversations to editors: {message}.",
            code="scope_escalation",
            errors=[FieldError(field="editors_may_read", message=message, type="scope_escalation")],
        )
    tenant = access.tenant
    before = settings_of(access).model_dump()
    tenant.editors_read_conversations = wanted.editors_may_read
    changes = audit.changes(before, wanted.model_dump())
    if changes:
        audit.record(
            session,
            access.actor,
            "conversations.settings_changed",
            tenant_id=tenant.id,
            target_type="tenant",
            target_id=tenant.id,
            data=changes,
        )
    return wanted


async def list_conversations(
    session: AsyncSession, access: TenantAccess, query: ConversationQuery, keys: Keys
) -> ConversationPage:
    await _check_widget(session, access, query)
    before = None if query.before is None else cursors.decode(query.before, str, field="before")
    rows = await repository.page(
        session, access.tenant.id, query, before=before, limit=query.limit + 1
    )
    shown, next = cursors.page(rows, query.limit, lambda row: (row[0].updated_at, row[0].id))
    figures = await _figures(session, access.tenant.id, [row[0].id for row in shown])
    data = [_conversation(row, keys, figures[row[0].id]) for row in shown]
    return ConversationPage(data=data, next=next)


TRANSCRIPT_PAGE = 1000
"""Items a transcript shows at most by default (a visitor may write a conversation of any
length)."""


async def read_transcript(
    session: AsyncSession,
    access: TenantAccess,
    thread_id: str,
    keys: Keys,
    *,
    after: str | None = None,
    limit: int = TRANSCRIPT_PAGE,
) -> TranscriptPage:
    """The conversation with ``limit`` of its items, from the one after the cursor ``after``
    (the ``next`` of the page before)."""
    position = None if after is None else cursors.decode(after, str, field="after")
    found = await _transcript(session, access.tenant.id, thread_id, keys, position, limit)
    if found is None:
        raise NotFound("No such conversation.", code="conversation_not_found")
    shown, next = found
    review = await repository.review(session, access.tenant.id, thread_id)
    _record(session, access, "conversation.read", thread_id)
    return TranscriptPage(
        **{name: value for name, value in shown if name != "review"},  # items as they are
        review=None if review is None else Review.model_validate(review),
        next=next,
    )


async def latest_transcript(
    session: AsyncSession, tenant_id: uuid.UUID, thread_id: str, keys: Keys, limit: int
) -> tuple[Transcript, int] | None:
    """The tenant's conversation with its last ``limit`` items, and how many items it has
    (no review, no audit entry: callers that show it to staff record the read)."""
    row = await repository.thread(session, tenant_id, thread_id)
    if row is None:
        return None
    items, total = await repository.last_items(session, tenant_id, thread_id, limit)
    figures = await _figures(session, tenant_id, [thread_id])
    return _shown(row, items, keys, figures[thread_id]), total


async def _transcript(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    thread_id: str,
    keys: Keys,
    after: cursors.Position[str] | None,
    limit: int,
) -> tuple[Transcript, str | None] | None:
    """The tenant's conversation with ``limit`` of its items from the one after ``after``,
    and the cursor of the next page (None: no more)."""
    row = await repository.thread(session, tenant_id, thread_id)
    if row is None:
        return None
    read = await (
        repository.first_items(session, tenant_id, [thread_id], limit + 1)
        if after is None
        else repository.items_after(session, tenant_id, thread_id, after, limit + 1)
    )
    items, next = cursors.page(read, limit, lambda item: (item.created_at, item.id))
    figures = await _figures(session, tenant_id, [thread_id])
    return _shown(row, items, keys, figures[thread_id]), next


def _shown(
    row: repository.ThreadRow, items: Sequence[ChatItem], keys: Keys, figures: _Figures
) -> Transcript:
    return Transcript(
        **_conversation(row, keys, figures).model_dump(),
        items=[_item(i, figures) for i in items],
        review=None,
    )


async def set_review(
    session: AsyncSession, access: TenantAccess, thread_id: str, update: ReviewUpdate
) -> Review:
    """Change the note and/or the reviewed flag (what is left out stays). The thread is
    locked first: of reviews at once, each sees what the last one committed (the first
    creates the review), and one racing a deletion finds the thread gone."""
    if await repository.thread(session, access.tenant.id, thread_id, lock=True) is None:
        raise NotFound("No such conversation.", code="conversation_not_found")
    review = await repository.review(session, access.tenant.id, thread_id)
    if review is None:
        review = ConversationReview(
            thread_id=thread_id, tenant_id=access.tenant.id, note="", reviewed=False
        )
        session.add(review)
    before = {"reviewed": review.reviewed, "note_chars": len(review.note)}
    if update.note is not None:
        review.note = update.note
    if update.reviewed is not None:
        review.reviewed = update.reviewed
    review.updated_by = access.actor.id
    await session.flush()
    after = {"reviewed": review.reviewed, "note_chars": len(review.note)}
    _record(session, access, "conversation.reviewed", thread_id, audit.changes(before, after))
    return Review.model_validate(review)


async def delete_conversation(session: AsyncSession, access: TenantAccess, thread_id: str) -> None:
    """Delete the thread (locked first: of deletions at once, one deletes and is audited,
    the others find it gone)."""
    if await repository.thread(session, access.tenant.id, thread_id, lock=True) is None:
        raise NotFound("No such conversation.", code="conversation_not_found")
    await chat.delete_thread(session, access.tenant.id, thread_id)
    _record(session, access, "conversation.deleted", thread_id)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("thread_id", "widget_id", "end_user", "item_id", "created_at", "kind", "text")
EXPORT_PAGE = 50
"""Conversations an export reads at once."""
ITEM_PAGE = 250
"""Items an export reads at once: with a page of conversations, the first ``ITEM_PAGE //
EXPORT_PAGE`` of each; a longer conversation's others ``ITEM_PAGE`` at a time."""


class ExportPart(NamedTuple):
    """Text of an export, in order, and the conversation it is of (None: the CSV header)."""

    thread_id: str | None
    text: str


Exporter = Callable[[Sessionmaker, uuid.UUID, ConversationFilters, Keys], AsyncIterator[ExportPart]]


async def export_lines(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, query: ConversationFilters, keys: Keys
) -> AsyncIterator[ExportPart]:
    """Every matching conversation with its items, one JSON line each (a ``Transcript``
    without its review), written as it is read: memory holds a page of conversations and a
    page of items however many and however long they are."""
    async for row, figures, pages in _exported(sessionmaker, tenant_id, query):
        thread_id = row[0].id
        conversation = _conversation(row, keys, figures).model_dump_json()
        yield ExportPart(thread_id, conversation[:-1] + ',"items":[')
        separator = ""
        async for items in pages:
            for item in items:
                yield ExportPart(thread_id, separator + _item(item, figures).model_dump_json())
                separator = ","
        yield ExportPart(thread_id, '],"review":null}\n')


async def export_csv(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, query: ConversationFilters, keys: Keys
) -> AsyncIterator[ExportPart]:
    """Every item of every matching conversation, one CSV row each (``CSV_COLUMNS``, a
    header first), written a page of items at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield ExportPart(None, _drained(buffer))
    async for row, _figures, pages in _exported(sessionmaker, tenant_id, query):
        thread = row[0]
        end_user = exported_end_user(thread.end_user_id, keys)
        async for items in pages:
            for item in items:
                writer.writerow(
                    (
                        thread.id,
                        thread.widget_id,
                        end_user,
                        item.id,
                        item.created_at.isoformat(),
                        item.kind,
                        _cell(_text(item.payload)),
                    )
                )
            yield ExportPart(thread.id, _drained(buffer))


def _cell(text: str) -> str:
    """Visitors write this text: a spreadsheet must not run it as a formula (OWASP's CSV
    injection advice: such a cell starts with an apostrophe)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


async def _exported(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, filters: ConversationFilters
) -> AsyncIterator[tuple[repository.ThreadRow, _Figures, AsyncIterator[Sequence[ChatItem]]]]:
    """The matching conversations in the list's order, each with its answers' figures and
    its items a page at a time (to be read before the next conversation). Each read is a
    unit of work of its own, ended before anything is yielded: no transaction stays open
    while the export is written or sent."""
    before: cursors.Position[str] | None = None
    first = ITEM_PAGE // EXPORT_PAGE
    while True:
        async with session_scope(sessionmaker, tenant=tenant_id) as session:
            rows = await repository.page(
                session, tenant_id, filters, before=before, limit=EXPORT_PAGE + 1
            )
            page = rows[:EXPORT_PAGE]
            ids = [row[0].id for row in page]
            figures = await _figures(session, tenant_id, ids)
            items: dict[str, list[ChatItem]] = {}
            for item in await repository.first_items(session, tenant_id, ids, first):
                items.setdefault(item.thread_id, []).append(item)
        for row in page:
            thread_id = row[0].id
            pages = _items(sessionmaker, tenant_id, thread_id, items.pop(thread_id, []), first)
            yield row, figures[thread_id], pages
        if len(rows) <= EXPORT_PAGE:
            return
        last = page[-1][0]
        before = (last.updated_at, last.id)


async def _items(
    sessionmaker: Sessionmaker,
    tenant_id: uuid.UUID,
    thread_id: str,
    first: list[ChatItem],
    asked: int,
) -> AsyncIterator[Sequence[ChatItem]]:
    """A conversation's items a page at a time: ``first`` (its first ones, ``asked`` of them
    read), then the others, ``ITEM_PAGE`` at a time."""
    page: Sequence[ChatItem] = first
    while page:
        yield page
        if len(page) < asked:
            return
        last = page[-1]
        async with session_scope(sessionmaker, tenant=tenant_id) as session:
            page = await repository.items_after(
                session, tenant_id, thread_id, (last.created_at, last.id), ITEM_PAGE
            )
        asked = ITEM_PAGE


async def record_export(
    session: AsyncSession,
    access: TenantAccess,
    filters: ConversationFilters,
    export_format: str,
    keys: Keys,
    export_id: uuid.UUID | None = None,
) -> None:
    """Audit an export: who, in which format, with which filters (an anonymous end user
    as exports show them, ``keys`` hashing it: members:read reads the log) and the export's
    id when it runs as a task."""
    await _check_widget(session, access, filters)
    audit.record(
        session,
        access.actor,
        "conversations.exported",
        tenant_id=access.tenant.id,
        target_type="conversation",
        target_id=export_id,
        data={"format": export_format, "filters": shown_filters(filters_of(filters), keys)},
    )


async def _check_widget(
    session: AsyncSession, access: TenantAccess, filters: ConversationFilters
) -> None:
    """A widget filter names one of the tenant's widgets: 404 ``widget_not_found`` otherwise,
    as analytics answers (an empty list would say the widget has no conversations)."""
    if filters.widget is not None:
        await get_widget(session, access.tenant, filters.widget)


def filters_of(filters: ConversationFilters) -> dict[str, Any]:
    """The filters as JSON, those left out omitted."""
    return filters.model_dump(mode="json", exclude_none=True)


def shown_filters(filters: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """Filters (:func:`filters_of`) as staff may read them: an anonymous end user as exports
    show one (a device id mints that visitor's sessions)."""
    end_user = filters.get("end_user")
    if not isinstance(end_user, str):
        return filters
    return filters | {"end_user": exported_end_user(end_user, keys)}


@dataclass(frozen=True)
class _Answer:
    ended: datetime
    figures: Answer

    def made(self, item: ChatItem) -> bool:
        """Whether ``item`` is an assistant message this answer wrote (created while it ran;
        a second of slack for the clocks' granularity)."""
        started = self.ended - timedelta(milliseconds=self.figures.total_ms, seconds=1)
        return item.kind == "assistant_message" and started <= item.created_at <= self.ended


@dataclass
class _Figures:
    """A thread's answers, from their ``server.response.finished`` facts."""

    answers: list[_Answer] = field(default_factory=list)

    def of(self, item: ChatItem) -> Answer | None:
        return next((a.figures for a in self.answers if a.made(item)), None)


async def _figures(
    session: AsyncSession, tenant_id: uuid.UUID, thread_ids: list[str]
) -> defaultdict[str, _Figures]:
    figures: defaultdict[str, _Figures] = defaultdict(_Figures)
    for thread_id, ended, data in await repository.responses(session, tenant_id, thread_ids):
        answer = Answer(
            first_token_ms=data.get("first_token_ms"),
            total_ms=data.get("total_ms") or 0,
            input_tokens=data.get("input_tokens"),
            output_tokens=data.get("output_tokens"),
        )
        figures[thread_id].answers.append(_Answer(ended, answer))
    return figures


def _conversation(row: repository.ThreadRow, keys: Keys, figures: _Figures) -> Conversation:
    thread, messages, positive, negative, reviewed = row
    first_tokens = [
        a.figures.first_token_ms for a in figures.answers if a.figures.first_token_ms is not None
    ]
    title = thread.payload.get("title")
    return Conversation(
        id=thread.id,
        widget_id=thread.widget_id,
        end_user=exported_end_user(thread.end_user_id, keys),
        title=title if isinstance(title, str) else None,
        messages=messages,
        positive_feedback=positive,
        negative_feedback=negative,
        first_activity=thread.created_at,
        last_activity=thread.updated_at,
        reviewed=bool(reviewed),
        responses=len(figures.answers),
        first_token_p50_ms=median(first_tokens) if first_tokens else None,
        input_tokens=sum(a.figures.input_tokens or 0 for a in figures.answers),
        output_tokens=sum(a.figures.output_tokens or 0 for a in figures.answers),
    )


def _item(item: ChatItem, figures: _Figures) -> TranscriptItem:
    return TranscriptItem(
        id=item.id,
        type=item.kind,
        created_at=item.created_at,
        text=_text(item.payload),
        feedback=item.feedback,
        item=item.payload,
        answer=figures.of(item),
    )


def _text(payload: dict[str, Any]) -> str:
    content = payload.get("content")
    parts: Sequence[Any] = content if isinstance(content, list) else []
    return "".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _record(
    session: AsyncSession,
    access: TenantAccess,
    action: str,
    thread_id: str,
    data: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        access.actor,
        action,
        tenant_id=access.tenant.id,
        target_type="conversation",
        target_id=thread_id,
        data=data,
    )
