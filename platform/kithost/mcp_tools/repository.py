from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.db import insert, rowcount
from kithost.models import WidgetMcpSecret


async def secrets(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID
) -> Sequence[WidgetMcpSecret]:
    result = await session.execute(
        select(WidgetMcpSecret)
        .where(WidgetMcpSecret.tenant_id == tenant_id, WidgetMcpSecret.widget_id == widget_id)
        .order_by(WidgetMcpSecret.tool_id)
    )
    return result.scalars().all()


async def secret(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    tool_id: str,
    *,
    lock: bool = False,
) -> WidgetMcpSecret | None:
    """The tool's secret; ``lock``: locked until the unit of work ends (``FOR UPDATE``; on
    SQLite the unit's write lock does it)."""
    query = select(WidgetMcpSecret).where(
        WidgetMcpSecret.tenant_id == tenant_id,
        WidgetMcpSecret.widget_id == widget_id,
        WidgetMcpSecret.tool_id == tool_id,
    )
    result = await session.execute(query.with_for_update() if lock else query)
    return result.scalar_one_or_none()


async def add_secret(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    tool_id: str,
    secret: str,
    origin: str,
) -> bool:
    """Add the tool's secret unless it has one (which another unit of work may have added
    meanwhile: the insert waits for that one to end); whether it was added."""
    statement = (
        insert(session, WidgetMcpSecret)
        .values(
            tenant_id=tenant_id, widget_id=widget_id, tool_id=tool_id, secret=secret, origin=origin
        )
        .on_conflict_do_nothing(index_elements=[WidgetMcpSecret.widget_id, WidgetMcpSecret.tool_id])
    )
    return await session.scalar(statement.returning(WidgetMcpSecret.id)) is not None


async def remove_secret(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    tool_id: str,
    *,
    origin: str | None = None,
) -> bool:
    """Whether there was one (set for ``origin``, when given)."""
    statement = delete(WidgetMcpSecret).where(
        WidgetMcpSecret.tenant_id == tenant_id,
        WidgetMcpSecret.widget_id == widget_id,
        WidgetMcpSecret.tool_id == tool_id,
    )
    if origin is not None:
        statement = statement.where(WidgetMcpSecret.origin == origin)
    return bool(rowcount(await session.execute(statement)))
