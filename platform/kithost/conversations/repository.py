from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    column,
    delete,
    exists,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnClause

from kithost.conversations.schemas import ConversationFilters, FeedbackFilter
from kithost.kit.cursors import Position
from kithost.models import (
    AnalyticsEvent,
    ChatAttachment,
    ChatItem,
    ChatThread,
    ConversationExport,
    ConversationExportThread,
    ConversationReview,
    ExportStatus,
)

MESSAGE_KINDS = ("user_message", "assistant_message")
ThreadRow = Row[ChatThread, int, int, int, bool | None]
"""A thread with its counts of messages, positive and negative feedback, and whether staff
reviewed it."""
REVIEWED = (
    select(ConversationReview.reviewed)
    .where(ConversationReview.thread_id == ChatThread.id)
    .scalar_subquery()
)


def _count(*where: ColumnElement[bool]) -> Any:
    return (
        select(func.count())
        .select_from(ChatItem)
        .where(ChatItem.thread_id == ChatThread.id, *where)
        .scalar_subquery()
    )


MESSAGES = _count(ChatItem.kind.in_(MESSAGE_KINDS))
POSITIVE = _count(ChatItem.feedback == "positive")
NEGATIVE = _count(ChatItem.feedback == "negative")
FAILED = "server.response.failed"
ERRORED = exists().where(
    AnalyticsEvent.tenant_id == ChatThread.tenant_id,
    AnalyticsEvent.thread_id == ChatThread.id,
    AnalyticsEvent.name == FAILED,
    AnalyticsEvent.data["error"].as_string() != "cancelled",
)
"""A response of the thread failed (the model's error, a refused address; not the visitor's
stop): its ``server.response.failed`` fact, since ChatKit streams errors, it stores none."""
ATTACHED = exists().where(
    ChatAttachment.tenant_id == ChatThread.tenant_id, ChatAttachment.thread_id == ChatThread.id
)


FINISHED = "server.response.finished"


async def responses(
    session: AsyncSession, tenant_id: uuid.UUID, thread_ids: Sequence[str]
) -> Sequence[tuple[str, datetime, dict[str, Any]]]:
    """The ``server.response.finished`` facts of the tenant's ``thread_ids``: (thread, when
    the answer ended, data)."""
    if not thread_ids:
        return []
    statement = select(
        AnalyticsEvent.thread_id, AnalyticsEvent.occurred_at, AnalyticsEvent.data
    ).where(
        AnalyticsEvent.tenant_id == tenant_id,
        AnalyticsEvent.name == FINISHED,
        AnalyticsEvent.thread_id.in_(thread_ids),
    )
    rows = await session.execute(statement.order_by(AnalyticsEvent.occurred_at))
    return [(str(thread), ended, dict(data)) for thread, ended, data in rows]


async def page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    query: ConversationFilters,
    *,
    before: Position[str] | None,
    limit: int,
) -> Sequence[ThreadRow]:
    """The tenant's threads matching ``query``, last active first, from the one after
    ``before``."""
    statement = _rows().where(ChatThread.tenant_id == tenant_id, *_filters(session, query))
    if before is not None:
        statement = statement.where(tuple_(ChatThread.updated_at, ChatThread.id) < tuple_(*before))
    statement = statement.order_by(ChatThread.updated_at.desc(), ChatThread.id.desc())
    return (await session.execute(statement.limit(limit))).all()


def _rows() -> Select[ChatThread, int, int, int, bool | None]:
    """Conversations: visitors' threads (not those of the dashboard's previews)."""
    return select(
        ChatThread,
        MESSAGES.label("messages"),
        POSITIVE.label("positive"),
        NEGATIVE.label("negative"),
        REVIEWED.label("reviewed"),
    ).where(ChatThread.preview.is_(False))


def _filters(session: AsyncSession, query: ConversationFilters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.widget is not None:
        where.append(ChatThread.widget_id == query.widget)
    if query.since is not None:
        where.append(ChatThread.updated_at >= query.since)
    if query.until is not None:
        where.append(ChatThread.updated_at < query.until)
    if query.end_user is not None:
        where.append(ChatThread.end_user_id == query.end_user)
    if query.feedback is FeedbackFilter.any:
        where.append(or_(POSITIVE > 0, NEGATIVE > 0))
    elif query.feedback is FeedbackFilter.positive:
        where.append(POSITIVE > 0)
    elif query.feedback is FeedbackFilter.negative:
        where.append(NEGATIVE > 0)
    if query.min_messages is not None:
        where.append(query.min_messages <= MESSAGES)
    if query.reviewed is not None:
        where.append(func.coalesce(REVIEWED, False) == query.reviewed)
    if query.has_error is not None:
        where.append(ERRORED if query.has_error else ~ERRORED)
    if query.has_attachments is not None:
        where.append(ATTACHED if query.has_attachments else ~ATTACHED)
    if query.q is not None:
        where.append(ChatThread.id.in_(_matching_threads(session, query.q)))
    return where


def search_words(text: str) -> list[str]:
    """What the search looks for in ``text``: runs of letters, digits and combining marks, as
    PostgreSQL's parser splits text (a Devanagari or vowelled Arabic word is one word there,
    not the pieces between its marks; SQLite's ``unicode61`` tokenizer splits a quoted word at
    its marks as it split the message, so the pieces match as a phrase)."""
    found: list[str] = []
    word: list[str] = []
    for character in text + " ":
        if character.isalnum() or unicodedata.category(character).startswith("M"):
            word.append(character)
        elif word:
            found.append("".join(word))
            word = []
    return found


SEARCH = table("chat_items_fts", column("rowid"), column("text"))
"""SQLite's FTS5 index of the messages' text (its migration keeps it in step)."""
ROWID: ColumnClause[int] = literal_column("chat_items.rowid", Integer)
WORDS = table("chat_item_words", column("thread_id"), column("kind"), column("words"))
"""PostgreSQL: the messages as the view ``chat_item_words`` (migration ``bf5a3a2ac457``),
``words`` being the expression ``ix_chat_items_search`` indexes, so that the app's role,
which row-level security binds, searches through the index. That expression is the SQL
function ``message_words(payload)`` (migration ``7e3b5c1d9a42``): the messages' text with
ASCII punctuation read as spaces, so that PostgreSQL's parser finds the words
:func:`search_words` and SQLite find, not an email address, URL, file name or hyphenated
number kept whole."""
SIMPLE: ColumnClause[Any] = literal_column("'simple'::regconfig")


def _matching_threads(session: AsyncSession, q: str) -> Select[str]:
    """The threads with a message holding every word of ``q`` (whole words, any case), in
    the messages' text only: PostgreSQL's full-text search (``simple`` configuration) or
    SQLite's FTS5 index. No words: nothing.

    On PostgreSQL the matching messages are found first (a materialized CTE, through the
    index), then their threads: left to itself, the planner walks the tenant's threads
    newest first and parses each one's messages, expecting an early end it rarely gets."""
    words = search_words(q)
    if not words:
        return select(ChatItem.thread_id).where(false())
    if session.get_bind().dialect.name == "postgresql":
        # the index reads a final sigma as sigma (message_words), lower case does not
        wanted = func.plainto_tsquery(SIMPLE, " ".join(words).replace("\u03c2", "\u03c3"))
        found = (
            select(WORDS.c.thread_id)
            .where(WORDS.c.kind.in_(MESSAGE_KINDS), WORDS.c.words.op("@@")(wanted))
            .cte("found")
            .prefix_with("MATERIALIZED")
        )
        return select(found.c.thread_id)
    phrase = " ".join(f'"{word}"' for word in words)  # each word a string: no operators
    indexed = select(SEARCH.c.rowid).where(literal_column("chat_items_fts").op("MATCH")(phrase))
    return select(ChatItem.thread_id).where(ChatItem.kind.in_(MESSAGE_KINDS), ROWID.in_(indexed))


async def thread(
    session: AsyncSession, tenant_id: uuid.UUID, thread_id: str, *, lock: bool = False
) -> ThreadRow | None:
    """The tenant's conversation; ``lock``: its thread's row locked until the unit of work
    ends (a rival's change or deletion waits, and is seen once it commits)."""
    statement = _rows().where(ChatThread.tenant_id == tenant_id, ChatThread.id == thread_id)
    if lock:
        statement = statement.with_for_update(of=ChatThread).execution_options(
            populate_existing=True
        )
    return (await session.execute(statement)).one_or_none()


async def first_items(
    session: AsyncSession, tenant_id: uuid.UUID, thread_ids: Sequence[str], limit: int
) -> Sequence[ChatItem]:
    """The first ``limit`` items of each of the tenant's ``thread_ids``, each thread's in
    order."""
    order = (ChatItem.created_at, ChatItem.id)
    number = func.row_number().over(partition_by=ChatItem.thread_id, order_by=order)
    numbered = (
        select(ChatItem, number.label("number"))
        .where(ChatItem.tenant_id == tenant_id, ChatItem.thread_id.in_(thread_ids))
        .subquery()
    )
    item = aliased(ChatItem, numbered)
    result = await session.scalars(
        select(item)
        .where(numbered.c.number <= limit)
        .order_by(item.thread_id, item.created_at, item.id)
    )
    return result.all()


async def items_after(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    thread_id: str,
    after: tuple[datetime, str],
    limit: int,
) -> Sequence[ChatItem]:
    """The first ``limit`` items of the tenant's thread after the item at ``after`` (its
    time and id), in order."""
    result = await session.scalars(
        select(ChatItem)
        .where(
            ChatItem.tenant_id == tenant_id,
            ChatItem.thread_id == thread_id,
            tuple_(ChatItem.created_at, ChatItem.id) > tuple_(*after),
        )
        .order_by(ChatItem.created_at, ChatItem.id)
        .limit(limit)
    )
    return result.all()


async def last_items(
    session: AsyncSession, tenant_id: uuid.UUID, thread_id: str, limit: int
) -> tuple[Sequence[ChatItem], int]:
    """The last ``limit`` items of the tenant's thread, in order, and how many it has."""
    where = (ChatItem.tenant_id == tenant_id, ChatItem.thread_id == thread_id)
    result = await session.scalars(
        select(ChatItem)
        .where(*where)
        .order_by(ChatItem.created_at.desc(), ChatItem.id.desc())
        .limit(limit)
    )
    total = await session.scalar(select(func.count()).select_from(ChatItem).where(*where))
    return result.all()[::-1], total or 0


async def review(
    session: AsyncSession, tenant_id: uuid.UUID, thread_id: str
) -> ConversationReview | None:
    return await session.scalar(
        select(ConversationReview).where(
            ConversationReview.tenant_id == tenant_id, ConversationReview.thread_id == thread_id
        )
    )


LIVE = (ExportStatus.pending, ExportStatus.ready)
"""The statuses of an export that may yet be downloaded."""


async def export(
    session: AsyncSession, tenant_id: uuid.UUID, export_id: uuid.UUID, *, lock: bool = False
) -> ConversationExport | None:
    """The tenant's export; ``lock``: its row locked until the unit of work ends."""
    statement = select(ConversationExport).where(
        ConversationExport.tenant_id == tenant_id, ConversationExport.id == export_id
    )
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(statement)


async def pending_exports(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """How many of the tenant's exports are still being written."""
    count = select(func.count()).where(
        ConversationExport.tenant_id == tenant_id,
        ConversationExport.status == ExportStatus.pending,
    )
    return await session.scalar(count) or 0


async def tenants_with_exports(session: AsyncSession) -> Sequence[uuid.UUID]:
    """The tenants with an export."""
    query = select(ConversationExport.tenant_id).distinct()
    return (await session.execute(query)).scalars().all()


async def exports_before(
    session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime | None
) -> Sequence[ConversationExport]:
    """The tenant's exports asked for before ``cutoff`` (every one when None)."""
    query = select(ConversationExport).where(ConversationExport.tenant_id == tenant_id)
    if cutoff is not None:
        query = query.where(ConversationExport.created_at < cutoff)
    return (await session.execute(query)).scalars().all()


async def lock_threads(
    session: AsyncSession, tenant_id: uuid.UUID, thread_ids: Sequence[str]
) -> None:
    """Lock the rows of those of the tenant's ``thread_ids`` still there (``FOR KEY SHARE``,
    in the order of their ids, as ``chat.repository.delete_threads`` locks them) until the
    unit of work ends: their deletion waits for it, or it for their deletion. Messages and
    other updates that keep a thread's key do not wait. SQLite has no row locks: its one
    writer at a time serialises the two already."""
    await session.execute(
        select(ChatThread.id)
        .where(ChatThread.tenant_id == tenant_id, ChatThread.id.in_(thread_ids))
        .order_by(ChatThread.id)
        .with_for_update(read=True, key_share=True)
    )


async def hold_threads(
    session: AsyncSession, tenant_id: uuid.UUID, export_id: uuid.UUID, thread_ids: Sequence[str]
) -> None:
    """Record that the export's file holds the tenant's ``thread_ids``."""
    held = [{"export_id": export_id, "thread_id": t, "tenant_id": tenant_id} for t in thread_ids]
    await session.execute(insert(ConversationExportThread), held)


async def forget_threads(session: AsyncSession, tenant_id: uuid.UUID, export_id: uuid.UUID) -> None:
    """Forget which threads the export's file holds (it is being written again, or is gone)."""
    await session.execute(
        delete(ConversationExportThread).where(
            ConversationExportThread.tenant_id == tenant_id,
            ConversationExportThread.export_id == export_id,
        )
    )


async def lost_exports(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    exports: Sequence[uuid.UUID] | None = None,
    threads: Sequence[str] | None = None,
) -> Sequence[ConversationExport]:
    """The tenant's pending or ready exports (among ``exports``, or holding one of
    ``threads``) whose files hold a thread deleted since, their rows locked until
    the unit of work ends, in the order of their ids: two deletions holding some of the same
    exports lock them in one order (else PostgreSQL may find a deadlock and abort one)."""
    held = ConversationExportThread
    gone = ~exists().where(ChatThread.tenant_id == held.tenant_id, ChatThread.id == held.thread_id)
    losing = select(held.export_id).where(held.tenant_id == tenant_id, gone)
    if exports is not None:
        losing = losing.where(held.export_id.in_(exports))
    if threads is not None:
        losing = losing.where(held.thread_id.in_(threads))
    statement = (
        select(ConversationExport)
        .where(
            ConversationExport.tenant_id == tenant_id,
            ConversationExport.status.in_(LIVE),
            ConversationExport.id.in_(losing),
        )
        .order_by(ConversationExport.id)
    )
    locked = statement.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(locked)).all()
