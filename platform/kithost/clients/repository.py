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
