"""Knowledge bases for OpenAI vector stores that exist already (an imported Agent Builder
workflow's). Here rather than in ``knowledge``, which sits above widgets: a row and its
audit record, nothing of the knowledge domain's upload work."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth.principals import TenantAccess
from kithost.models import KnowledgeBase


async def adopt_vector_stores(
    session: AsyncSession, access: TenantAccess, name: str, vector_stores: list[str]
) -> uuid.UUID:
    """A knowledge base searching the first of ``vector_stores`` (their documents stay
    OpenAI's, listed in its description); its id."""
    base = KnowledgeBase(
        tenant_id=access.tenant.id,
        name=f"{name} (imported)"[:200],
        description=("Adopted from an Agent Builder export: " + ", ".join(vector_stores))[:1000],
        vector_store_id=vector_stores[0],
    )
    session.add(base)
    await session.flush()
    audit.record(
        session,
        access.actor,
        "knowledge_base.adopted",
        tenant_id=access.tenant.id,
        target_type="knowledge_base",
        target_id=base.id,
        data={"vector_stores": vector_stores},
    )
    return base.id
