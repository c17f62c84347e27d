from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Select, String, and_, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import DocumentStatus, KnowledgeBase, KnowledgeDocument, Widget, WidgetVersion


async def lock_bases(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[KnowledgeBase]:
    """The tenant's bases, oldest first, locked until the unit of work ends."""
    result = await session.execute(
        select(KnowledgeBase)
        .where(KnowledgeBase.tenant_id == tenant_id)
        .order_by(KnowledgeBase.created_at, KnowledgeBase.id)
        .with_for_update()
    )
    return result.scalars().all()


class Figures(NamedTuple):
    """A base's documents counted: all of them (whatever their status), their bytes, and
    how many are processing or failed."""

    documents: int
    size_bytes: int
    processing: int
    failed: int


def _bases_with_figures(
    tenant_id: uuid.UUID, base_id: uuid.UUID | None = None
) -> Select[KnowledgeBase, int, int, int, int]:
    """The tenant's bases (with ``base_id``, that one only), oldest first, each with its
    :class:`Figures`' four columns: counted in one aggregate of the tenant's documents
    grouped by base, without loading a document."""
    document = KnowledgeDocument
    documents, bases = [document.tenant_id == tenant_id], [KnowledgeBase.tenant_id == tenant_id]
    if base_id is not None:
        documents.append(document.knowledge_base_id == base_id)
        bases.append(KnowledgeBase.id == base_id)
    figures = (
        select(
            document.knowledge_base_id,
            func.count().label("documents"),
            cast(func.sum(document.size_bytes), BigInteger).label("size_bytes"),
            func.sum(case((document.status == DocumentStatus.processing, 1), else_=0)).label(
                "processing"
            ),
            func.sum(case((document.status == DocumentStatus.failed, 1), else_=0)).label("failed"),
        )
        .where(*documents)
        .group_by(document.knowledge_base_id)
        .subquery()
    )
    return (
        select(
            KnowledgeBase,
            func.coalesce(figures.c.documents, 0),
            func.coalesce(figures.c.size_bytes, 0),
            func.coalesce(figures.c.processing, 0),
            func.coalesce(figures.c.failed, 0),
        )
        .outerjoin(figures, figures.c.knowledge_base_id == KnowledgeBase.id)
        .where(*bases)
        .order_by(KnowledgeBase.created_at, KnowledgeBase.id)
    )


async def list_bases_with_figures(
    session: AsyncSession, tenant_id: uuid.UUID
) -> list[tuple[KnowledgeBase, Figures]]:
    """The tenant's bases, oldest first, each with its :class:`Figures` (one statement)."""
    result = await session.execute(_bases_with_figures(tenant_id))
    return [(base, Figures(*counts)) for base, *counts in result.all()]


async def base_with_documents(
    session: AsyncSession, tenant_id: uuid.UUID, base_id: uuid.UUID
) -> tuple[KnowledgeBase, Figures, list[KnowledgeDocument]] | None:
    """The base, its :class:`Figures` (counted as :func:`list_bases_with_figures` counts
    them) and its documents, oldest first; None when the tenant has no such base.

    One statement, so one snapshot: the documents listed are the ones counted, however
    many uploads commit meanwhile (two statements on PostgreSQL, read committed, each saw
    the documents committed by its own start)."""
    document = KnowledgeDocument
    query = (
        _bases_with_figures(tenant_id, base_id)
        .add_columns(document)
        .outerjoin(
            document,
            and_(document.knowledge_base_id == KnowledgeBase.id, document.tenant_id == tenant_id),
        )
        .order_by(None)
        .order_by(document.created_at, document.id)
    )
    rows = (await session.execute(query)).all()
    if not rows:
        return None
    base, *counts, _ = rows[0]
    return base, Figures(*counts), [row[-1] for row in rows if row[-1] is not None]


async def count_bases(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    result = await session.execute(select(func.count()).where(KnowledgeBase.tenant_id == tenant_id))
    return result.scalar_one()


async def widgets_searching(
    session: AsyncSession, tenant_id: uuid.UUID, base_id: uuid.UUID
) -> list[tuple[str, str]]:
    """The tenant's widgets whose draft or published version has a ``file_search`` tool
    searching the base: each widget's name and which (``draft``, ``published``)."""
    mentioned = f"%{base_id}%"
    drafts = await session.execute(
        select(Widget.name, Widget.draft).where(
            Widget.tenant_id == tenant_id, cast(Widget.draft, String).like(mentioned)
        )
    )
    published = await session.execute(
        select(Widget.name, WidgetVersion.config)
        .join(
            WidgetVersion,
            and_(
                WidgetVersion.widget_id == Widget.id,
                WidgetVersion.number == Widget.published_version,
            ),
        )
        .where(Widget.tenant_id == tenant_id, cast(WidgetVersion.config, String).like(mentioned))
    )
    found = [(name, "draft") for name, config in drafts.all() if _searches(config, base_id)]
    found += [(name, "published") for name, config in published.all() if _searches(config, base_id)]
    return sorted(found)


def _searches(config: dict[str, Any], base_id: uuid.UUID) -> bool:
    """Whether a widget's configuration (as stored) has a file search of the base."""
    agent = config.get("agent")
    tools = agent.get("tools") if isinstance(agent, dict) else None
    return any(
        isinstance(tool, dict)
        and tool.get("type") == "file_search"
        and str(base_id) in (tool.get("knowledge_bases") or [])
        for tool in tools or []
    )


async def get_base(
    session: AsyncSession, tenant_id: uuid.UUID, base_id: uuid.UUID, *, lock: bool = False
) -> KnowledgeBase | None:
    query = select(KnowledgeBase).where(
        KnowledgeBase.tenant_id == tenant_id, KnowledgeBase.id == base_id
    )
    result = await session.execute(query.with_for_update() if lock else query)
    return result.scalar_one_or_none()


async def list_documents(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    base_ids: Sequence[uuid.UUID],
    *,
    lock: bool = False,
) -> Sequence[KnowledgeDocument]:
    """The bases' documents, oldest first; with ``lock``, locked for the transaction."""
    query = (
        select(KnowledgeDocument)
        .where(
            KnowledgeDocument.tenant_id == tenant_id,
            KnowledgeDocument.knowledge_base_id.in_(base_ids),
        )
        .order_by(KnowledgeDocument.created_at, KnowledgeDocument.id)
    )
    result = await session.execute(query.with_for_update() if lock else query)
    return result.scalars().all()


async def count_documents(session: AsyncSession, tenant_id: uuid.UUID, base_id: uuid.UUID) -> int:
    result = await session.execute(
        select(func.count()).where(
            KnowledgeDocument.tenant_id == tenant_id,
            KnowledgeDocument.knowledge_base_id == base_id,
        )
    )
    return result.scalar_one()


async def tenant_bytes(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """The bytes of all the tenant's documents, whatever their status."""
    result = await session.execute(
        select(func.coalesce(func.sum(KnowledgeDocument.size_bytes), 0)).where(
            KnowledgeDocument.tenant_id == tenant_id
        )
    )
    return int(result.scalar_one())


async def get_document(
    session: AsyncSession, tenant_id: uuid.UUID, document_id: uuid.UUID, *, lock: bool = False
) -> KnowledgeDocument | None:
    """The document; with ``lock``, locked for the transaction (a deletion waits, or it was
    deleted already and is None)."""
    query = select(KnowledgeDocument).where(
        KnowledgeDocument.tenant_id == tenant_id, KnowledgeDocument.id == document_id
    )
    result = await session.execute(query.with_for_update() if lock else query)
    return result.scalar_one_or_none()


async def vector_stores(
    session: AsyncSession, tenant_id: uuid.UUID, base_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The OpenAI vector store of each of ``base_ids`` that has one (is the tenant's and has
    had a document processed)."""
    result = await session.execute(
        select(KnowledgeBase.id, KnowledgeBase.vector_store_id).where(
            KnowledgeBase.tenant_id == tenant_id,
            KnowledgeBase.id.in_(base_ids),
            KnowledgeBase.vector_store_id.is_not(None),
        )
    )
    return {base_id: store for base_id, store in result.all() if store is not None}
