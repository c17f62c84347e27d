"""The chat runtime's SQL. Every statement is scoped to one end user of one widget of one
tenant (:func:`owned`), except the tenant-wide deletions that retention and erasure run."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import (
    ColumnElement,
    UnaryExpression,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat.context import ChatContext
from kithost.db import lock_key, rowcount
from kithost.models import (
    ChatAttachment,
    ChatItem,
    ChatQuotaUse,
    ChatThread,
    Tenant,
    WebhookDelivery,
    Widget,
)
from kithost.models.base import utcnow
from kithost.storage import blob_key

Order = Literal["asc", "desc"]
DELETE_BATCH = 500
"""Thread ids per statement deleting them and what is theirs (SQLite's bound parameters)."""
Owned = type[ChatThread] | type[ChatItem] | type[ChatAttachment] | type[ChatQuotaUse]


class ThreadsDeleted(Protocol):
    """What runs in the unit of work deleting threads, once they are gone: given their
    tenant and ids (at most :data:`DELETE_BATCH` at a time)."""

    async def __call__(
        self, session: AsyncSession, tenant_id: uuid.UUID, *, threads: Sequence[str]
    ) -> object: ...


_THREADS_DELETED: list[ThreadsDeleted] = []


def on_threads_deleted(hook: ThreadsDeleted) -> None:
    """Have ``hook`` run by every deletion of threads (:func:`delete_threads`), in its unit
    of work: ``conversations.exports`` registers as it is imported, invalidating the exports
    that hold them (``chat`` sits below ``conversations``)."""
    _THREADS_DELETED.append(hook)


def owned(model: Owned, context: ChatContext) -> ColumnElement[bool]:
    return and_(
        model.tenant_id == context.tenant_id,
        model.widget_id == context.widget_id,
        model.end_user_id == context.end_user_id,
    )


async def thread(session: AsyncSession, context: ChatContext, thread_id: str) -> ChatThread | None:
    return await session.scalar(
        select(ChatThread).where(ChatThread.id == thread_id, owned(ChatThread, context))
    )


async def thread_with_items(
    session: AsyncSession, context: ChatContext, thread_id: str, limit: int
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The payloads of the thread and of up to ``limit`` of its latest items (newest first),
    in one query."""
    rows = await session.execute(
        _THREAD_WITH_ITEMS,
        {
            "thread_id": thread_id,
            "limit": limit,
            "tenant_id": context.tenant_id,
            "widget_id": context.widget_id,
            "end_user_id": context.end_user_id,
        },
    )
    found = rows.all()
    if not found:
        return None, []
    return found[0][0], [item for _, item in found if item is not None]


async def thread_exists(session: AsyncSession, context: ChatContext, thread_id: str) -> bool:
    found = await session.scalar(
        select(ChatThread.id).where(ChatThread.id == thread_id, owned(ChatThread, context))
    )
    return found is not None


async def widget_exists(session: AsyncSession, context: ChatContext) -> bool:
    found = await session.scalar(
        select(Widget.id).where(
            Widget.id == context.widget_id, Widget.tenant_id == context.tenant_id
        )
    )
    return found is not None


async def tenants_left(session: AsyncSession, tenant_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``tenant_ids`` have not been deleted (``tenants`` has no row-level security:
    no tenant to scope to, nor a bypass, is needed)."""
    return set(await session.scalars(select(Tenant.id).where(Tenant.id.in_(tenant_ids))))


async def threads(
    session: AsyncSession, context: ChatContext, after: str | None, limit: int, order: Order
) -> Sequence[ChatThread] | None:
    """Up to ``limit`` threads after the cursor thread, by creation; None when the cursor
    thread is not the context's end user's (any more)."""
    query = select(ChatThread).where(owned(ChatThread, context))
    if after is not None:
        cursor_time = await session.scalar(
            select(ChatThread.created_at).where(ChatThread.id == after, owned(ChatThread, context))
        )
        if cursor_time is None:
            return None
        query = query.where(_after(ChatThread, cursor_time, after, order))
    query = query.order_by(*_ordering(ChatThread, order)).limit(limit)
    return (await session.scalars(query)).all()


async def touch_thread(session: AsyncSession, context: ChatContext, thread_id: str) -> bool:
    """Mark the thread active now; False when the context's end user has no such thread."""
    result = await session.execute(_TOUCH, _touching(context, thread_id))
    return rowcount(result) == 1


async def replace_thread(
    session: AsyncSession,
    context: ChatContext,
    thread_id: str,
    payload: dict[str, Any],
    version: int,
) -> bool:
    """Store the thread's new payload (of layout ``version``) and mark it active now; False
    when the context's end user has no such thread."""
    values = {**_touching(context, thread_id), "payload": payload, "version": version}
    result = await session.execute(_REPLACE_THREAD, values)
    return rowcount(result) == 1


def _touching(context: ChatContext, thread_id: str) -> dict[str, Any]:
    """The parameters of :data:`_TOUCH` (and :data:`_REPLACE_THREAD`'s but two)."""
    return {
        "thread_id": thread_id,
        "now": utcnow(),
        "owner_tenant_id": context.tenant_id,
        "owner_widget_id": context.widget_id,
        "owner_end_user_id": context.end_user_id,
    }


async def item(
    session: AsyncSession, context: ChatContext, thread_id: str, item_id: str, *, lock: bool = False
) -> ChatItem | None:
    """The end user's item of the thread; ``lock``: row-locked until the unit of work ends
    (as :func:`attachment`)."""
    query = select(ChatItem).where(
        ChatItem.id == item_id, ChatItem.thread_id == thread_id, owned(ChatItem, context)
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def items(
    session: AsyncSession,
    context: ChatContext,
    thread_id: str,
    after: str | None,
    limit: int,
    order: Order,
) -> Sequence[ChatItem] | None:
    """Up to ``limit`` items of the thread after the cursor item, in the order the items
    were created (their ``created_at``); None when the cursor item is not in the thread."""
    scope = and_(ChatItem.thread_id == thread_id, owned(ChatItem, context))
    query = select(ChatItem).where(scope)
    if after is not None:
        cursor_time = await session.scalar(
            select(ChatItem.created_at).where(ChatItem.id == after, scope)
        )
        if cursor_time is None:
            return None
        query = query.where(_after(ChatItem, cursor_time, after, order))
    query = query.order_by(*_ordering(ChatItem, order)).limit(limit)
    return (await session.scalars(query)).all()


async def delete_item(
    session: AsyncSession, context: ChatContext, thread_id: str, item_id: str
) -> None:
    await session.execute(
        delete(ChatItem).where(
            ChatItem.id == item_id, ChatItem.thread_id == thread_id, owned(ChatItem, context)
        )
    )


async def count_quota_uses(session: AsyncSession, context: ChatContext, since: datetime) -> int:
    """How many messages the end user has sent since ``since``, as the quota counts them."""
    count = await session.scalar(
        select(func.count())
        .select_from(ChatQuotaUse)
        .where(owned(ChatQuotaUse, context), ChatQuotaUse.created_at >= since)
    )
    return count or 0


async def add_quota_use(
    session: AsyncSession, context: ChatContext, use_id: str, kind: str, expired: datetime
) -> None:
    """Count one more message of the end user's (``kind``: what it was), and forget theirs
    sent before ``expired`` (the quota's window has passed them)."""
    await session.execute(
        delete(ChatQuotaUse).where(owned(ChatQuotaUse, context), ChatQuotaUse.created_at < expired)
    )
    session.add(
        ChatQuotaUse(
            id=use_id,
            tenant_id=context.tenant_id,
            widget_id=context.widget_id,
            end_user_id=context.end_user_id,
            kind=kind,
            created_at=utcnow(),
        )
    )


async def delete_quota_uses(
    session: AsyncSession, tenant_id: uuid.UUID, where: ColumnElement[bool]
) -> int:
    """Delete the tenant's quota uses matching ``where``; how many."""
    result = await session.execute(
        delete(ChatQuotaUse).where(ChatQuotaUse.tenant_id == tenant_id, where)
    )
    return rowcount(result)


async def set_feedback(
    session: AsyncSession, context: ChatContext, thread_id: str, item_ids: list[str], kind: str
) -> list[str]:
    """Record ``kind`` on those of ``item_ids`` that are in the thread; their ids."""
    result = await session.scalars(
        update(ChatItem)
        .where(
            ChatItem.thread_id == thread_id,
            ChatItem.id.in_(item_ids),
            owned(ChatItem, context),
        )
        .values(feedback=kind)
        .returning(ChatItem.id)
    )
    return list(result)


async def attachment(
    session: AsyncSession, context: ChatContext, attachment_id: str, *, lock: bool = False
) -> ChatAttachment | None:
    """The end user's attachment; ``lock``: row-locked until the unit of work ends (on
    PostgreSQL; SQLite's writing units hold the database's one write lock anyway)."""
    query = select(ChatAttachment).where(
        ChatAttachment.id == attachment_id, owned(ChatAttachment, context)
    )
    return await session.scalar(query.with_for_update() if lock else query)


async def lock_end_user(session: AsyncSession, context: ChatContext) -> None:
    """Hold the context's end user (of its widget) until the unit of work ends, so that units
    counting what the end user has before adding to it (a cap, a quota) take turns (no row
    stands for an end user: ``db.lock_key``)."""
    end_user = f"{context.tenant_id}:{context.widget_id}:{context.end_user_id}"
    await lock_key(session, f"kithost.chat.end_user:{end_user}")


async def count_unsent_attachments(session: AsyncSession, context: ChatContext) -> int:
    """How many of the end user's attachments no message carries."""
    count = await session.scalar(
        select(func.count())
        .select_from(ChatAttachment)
        .where(owned(ChatAttachment, context), ChatAttachment.thread_id.is_(None))
    )
    return count or 0


async def delete_attachment(
    session: AsyncSession, context: ChatContext, attachment_id: str
) -> None:
    await session.execute(
        delete(ChatAttachment).where(
            ChatAttachment.id == attachment_id, owned(ChatAttachment, context)
        )
    )


async def delete_threads(
    session: AsyncSession, where: ColumnElement[bool], *, skip_locked: bool = False
) -> tuple[int, list[str]]:
    """Delete the threads matching ``where`` with their items, attachments and webhook
    deliveries (sent or not: they carry what was said; a pending one is never sent, its task
    finding nothing).

    The threads are chosen locked (``FOR UPDATE``, in the order of their ids, as an export
    recording the threads it holds locks them: neither holds a thread the other waits for
    while waiting for one the other holds; on SQLite the unit of work holds the database's
    one write lock already) and only those are deleted, whole: what writes to a thread (a
    message's item touches it, binding an attachment references it) waits for this deletion
    and finds the thread gone, so nothing is written to a thread once it is chosen, and
    nothing of one is deleted that is not deleted with it. A thread another
    unit of work holds is waited for, and ``where`` checked again on what it committed
    (``updated_at``, moved by a message: no longer idle); ``skip_locked``: left out at once
    instead (it is being written to).

    The deliveries go last, by the ids of the threads deleted: whatever writes a delivery
    about a thread holds, until it commits, a lock this deletion waits for (a message's item
    its thread, ``conversation.idle`` its mark, feedback the items, a replay the thread), so
    a delivery written meanwhile is committed, and found, by then. Then the hooks
    (:func:`on_threads_deleted`) run on the threads deleted.

    Returns the number of chat rows deleted and the storage keys of the attachments' bytes,
    to delete once the transaction has committed.
    """
    chosen = await session.execute(
        select(ChatThread.tenant_id, ChatThread.id)
        .where(where)
        .order_by(ChatThread.id)
        .with_for_update(skip_locked=skip_locked)
    )
    by_tenant: dict[uuid.UUID, list[str]] = {}
    for tenant_id, thread_id in chosen:
        by_tenant.setdefault(tenant_id, []).append(thread_id)
    deleted = 0
    keys: list[str] = []
    for tenant_id, ids in by_tenant.items():
        for start in range(0, len(ids), DELETE_BATCH):
            chunk = ids[start : start + DELETE_BATCH]
            attachments = await session.execute(
                delete(ChatAttachment)
                .where(ChatAttachment.thread_id.in_(chunk))
                .returning(ChatAttachment.tenant_id, ChatAttachment.widget_id, ChatAttachment.id)
            )
            found = [blob_key(*row) for row in attachments]
            keys += found
            items = await session.execute(delete(ChatItem).where(ChatItem.thread_id.in_(chunk)))
            threads = await session.execute(delete(ChatThread).where(ChatThread.id.in_(chunk)))
            await session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.thread_id.in_(chunk)
                )
            )
            for hook in _THREADS_DELETED:
                await hook(session, tenant_id, threads=chunk)
            deleted += len(found) + rowcount(items) + rowcount(threads)
    return deleted, keys


async def delete_loose_attachments(
    session: AsyncSession, tenant_id: uuid.UUID, where: ColumnElement[bool]
) -> tuple[int, list[str]]:
    """Delete the tenant's attachments matching ``where`` that no message carries; how many,
    and the storage keys of their bytes: of the rows deleted, not of rows seen first (one a
    message has taken meanwhile is no longer deleted, and its bytes are its message's)."""
    rows = await session.execute(
        delete(ChatAttachment)
        .where(ChatAttachment.tenant_id == tenant_id, ChatAttachment.thread_id.is_(None), where)
        .returning(ChatAttachment.tenant_id, ChatAttachment.widget_id, ChatAttachment.id)
    )
    keys = [blob_key(*row) for row in rows]
    return len(keys), keys


def _ordering(model: type[ChatThread] | type[ChatItem], order: Order) -> list[UnaryExpression[Any]]:
    if order == "desc":
        return [model.created_at.desc(), model.id.desc()]
    return [model.created_at.asc(), model.id.asc()]


def _after(
    model: type[ChatThread] | type[ChatItem],
    cursor_time: datetime,
    cursor_id: str,
    order: Order,
) -> ColumnElement[bool]:
    """Rows strictly after the cursor row (``created_at``, ``id``) in ``order``: the index
    on (…, created_at, id) answers it, no OFFSET."""
    if order == "desc":
        return or_(
            model.created_at < cursor_time,
            and_(model.created_at == cursor_time, model.id < cursor_id),
        )
    return or_(
        model.created_at > cursor_time,
        and_(model.created_at == cursor_time, model.id > cursor_id),
    )


def _owned_by_parameters(model: Owned, prefix: str = "") -> ColumnElement[bool]:
    """:func:`owned` with the end user as the parameters ``tenant_id``, ``widget_id`` and
    ``end_user_id`` (after ``prefix``: an UPDATE's own parameters may not be named as its
    columns), for a statement built once."""
    return and_(
        model.tenant_id == bindparam(f"{prefix}tenant_id"),
        model.widget_id == bindparam(f"{prefix}widget_id"),
        model.end_user_id == bindparam(f"{prefix}end_user_id"),
    )


_THREAD_WITH_ITEMS = (
    select(ChatThread.payload, ChatItem.payload)
    .outerjoin(ChatItem, and_(ChatItem.thread_id == ChatThread.id, _owned_by_parameters(ChatItem)))
    .where(ChatThread.id == bindparam("thread_id"), _owned_by_parameters(ChatThread))
    .order_by(*_ordering(ChatItem, "desc"))
    .limit(bindparam("limit"))
)
"""Built once: every reply reads its thread so, before its first token."""


_TOUCH = (
    update(ChatThread)
    .where(ChatThread.id == bindparam("thread_id"), _owned_by_parameters(ChatThread, "owner_"))
    .values(updated_at=bindparam("now"))
    # Units of work that touch a thread load none first: nothing to bring up to date.
    .execution_options(synchronize_session=False)
)
"""Built once, as the next: every message a response adds touches its thread."""
_REPLACE_THREAD = _TOUCH.values(
    payload=bindparam("payload", type_=ChatThread.payload.type),
    payload_version=bindparam("version"),
)
