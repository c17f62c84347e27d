from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.db import rowcount
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
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID, tool_id: str
) -> WidgetMcpSecret | None:
    result = await session.execute(
        select(WidgetMcpSecret).where(
            WidgetMcpSecret.tenant_id == tenant_id,
            WidgetMcpSecret.widget_id == widget_id,
            WidgetMcpSecret.tool_id == tool_id,
        )
    )
    return result.scalar_one_or_none()


async def remove_secret(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID, tool_id: str
) -> bool:
    """Whether there was one."""
    result = await session.execute(
        delete(WidgetMcpSecret).where(
            WidgetMcpSecret.tenant_id == tenant_id,
            WidgetMcpSecret.widget_id == widget_id,
            WidgetMcpSecret.tool_id == tool_id,
        )
    )
    return bool(rowcount(result))
