from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import ApiClient


async def list_clients(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[ApiClient]:
    result = await session.execute(
        select(ApiClient)
        .where(ApiClient.tenant_id == tenant_id)
        .order_by(ApiClient.created_at, ApiClient.id)
    )
    return result.scalars().all()


async def lock_client(
    session: AsyncSession, tenant_id: uuid.UUID, client_id: uuid.UUID
) -> ApiClient | None:
    """The client as committed now, its row locked (PostgreSQL) until the unit of work
    ends."""
    result = await session.execute(
        select(ApiClient)
        .where(ApiClient.tenant_id == tenant_id, ApiClient.id == client_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()
