from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from kithost.models import Widget

EncryptedColumn = InstrumentedAttribute[str | None]
"""A text column of a ``Record`` holding ``SecretBox`` ciphertexts."""


async def lock_encrypted(
    session: AsyncSession, column: EncryptedColumn
) -> list[tuple[uuid.UUID, str]]:
    """Every ``(id, ciphertext)`` of ``column``, the rows locked (PostgreSQL) until commit."""
    entity = column.class_
    result = await session.execute(
        select(entity.id, column).where(column.is_not(None)).order_by(entity.id).with_for_update()
    )
    return [(id, value) for id, value in result]


async def replace_encrypted(
    session: AsyncSession, column: EncryptedColumn, id: uuid.UUID, ciphertext: str
) -> None:
    """Store a new ciphertext of the same secret. A statement, not the unit of work, so a
    widget's ``revision`` stays: nothing the widget is has changed."""
    entity = column.class_
    await session.execute(update(entity).where(entity.id == id).values({column: ciphertext}))


async def touch_tenant_widgets(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """A new revision for every widget of the tenant: what a config cache holds of the tenant
    (its OpenAI key) has changed, so each widget must be reloaded."""
    await session.execute(
        update(Widget)
        .where(Widget.tenant_id == tenant_id)
        .values(revision=Widget.revision + 1)
        .execution_options(synchronize_session=False)
    )
