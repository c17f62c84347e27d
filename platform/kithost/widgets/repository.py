from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import AllowedOrigin, KnowledgeBase, Widget, WidgetVersion


async def get_widget(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID, *, hold: bool = False
) -> Widget | None:
    """``hold``: the row locked as a change to it locks it (``FOR NO KEY UPDATE``: rows
    referring to the widget may still be added) until the unit of work ends, read as the
    change before it committed left it; on SQLite the unit's write lock does it."""
    query = select(Widget).where(Widget.tenant_id == tenant_id, Widget.id == widget_id)
    if hold:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    result = await session.execute(query)
    return result.scalar_one_or_none()


async def widget_named(session: AsyncSession, tenant_id: uuid.UUID, name: str) -> Widget | None:
    """The tenant's first widget named ``name``, if any."""
    result = await session.execute(
        select(Widget)
        .where(Widget.tenant_id == tenant_id, Widget.name == name)
        .order_by(Widget.created_at, Widget.id)
        .limit(1)
    )
    return result.scalar_one_or_none()


async def list_widgets(
    session: AsyncSession, tenant_id: uuid.UUID, *, after: Widget | None, limit: int, q: str | None
) -> Sequence[Widget]:
    """The tenant's widgets in creation order, from the one after ``after``; only those
    whose name holds ``q`` (any case) unless it is None."""
    query = (
        select(Widget)
        .where(Widget.tenant_id == tenant_id)
        .order_by(Widget.created_at, Widget.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(Widget.created_at, Widget.id) > (after.created_at, after.id))
    if q is not None:
        query = query.where(Widget.name.icontains(q, autoescape=True))
    result = await session.execute(query)
    return result.scalars().all()


async def list_origins(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID
) -> Sequence[AllowedOrigin]:
    result = await session.execute(
        select(AllowedOrigin)
        .where(AllowedOrigin.tenant_id == tenant_id, AllowedOrigin.widget_id == widget_id)
        .order_by(AllowedOrigin.origin)
    )
    return result.scalars().all()


async def get_origin(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID, origin_id: uuid.UUID
) -> AllowedOrigin | None:
    result = await session.execute(
        select(AllowedOrigin).where(
            AllowedOrigin.tenant_id == tenant_id,
            AllowedOrigin.widget_id == widget_id,
            AllowedOrigin.id == origin_id,
        )
    )
    return result.scalar_one_or_none()


async def origin_exists(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID, origin: str
) -> bool:
    result = await session.execute(
        select(AllowedOrigin.id).where(
            AllowedOrigin.tenant_id == tenant_id,
            AllowedOrigin.widget_id == widget_id,
            AllowedOrigin.origin == origin,
        )
    )
    return result.first() is not None


async def list_versions(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    *,
    before: int | None,
    limit: int,
) -> Sequence[WidgetVersion]:
    """The widget's versions, newest first, from the one numbered below ``before``."""
    query = (
        select(WidgetVersion)
        .where(WidgetVersion.tenant_id == tenant_id, WidgetVersion.widget_id == widget_id)
        .order_by(WidgetVersion.number.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(WidgetVersion.number < before)
    result = await session.execute(query)
    return result.scalars().all()


async def get_version(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID, number: int
) -> WidgetVersion | None:
    result = await session.execute(
        select(WidgetVersion).where(
            WidgetVersion.tenant_id == tenant_id,
            WidgetVersion.widget_id == widget_id,
            WidgetVersion.number == number,
        )
    )
    return result.scalar_one_or_none()


async def last_version_number(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID
) -> int:
    """The number of the widget's newest version; 0 before the first is published."""
    result = await session.execute(
        select(func.coalesce(func.max(WidgetVersion.number), 0)).where(
            WidgetVersion.tenant_id == tenant_id, WidgetVersion.widget_id == widget_id
        )
    )
    return int(result.scalar_one())


async def existing_knowledge_bases(
    session: AsyncSession, tenant_id: uuid.UUID, base_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of ``base_ids`` are the tenant's knowledge bases, locked for share until the
    commit: a deletion (which locks its base, then looks for widgets searching it) waits for
    the draft naming it, or the draft waits and finds it gone."""
    result = await session.execute(
        select(KnowledgeBase.id)
        .where(KnowledgeBase.tenant_id == tenant_id, KnowledgeBase.id.in_(base_ids))
        .with_for_update(read=True)
    )
    return set(result.scalars())
