"""Knowledge bases for OpenAI vector stores that exist already (an imported Agent Builder
workflow's). Here rather than in ``knowledge``, which sits above widgets: the rows and their
audit records; whether the tenant's own key reaches a store is the knowledge domain's
question, asked through :func:`checks_store_access` (registered as it is imported).

A store is adopted only when it is the tenant's: its own key (the widget's model key for the
operator's endpoint, else the tenant's OpenAI key; never the platform's) retrieves it at the
operator's endpoint, and no other tenant's base holds it (``knowledge_bases.vector_store_id``
is unique: a store Kithost made for a base, or adopted, is one base's only). A store this
tenant holds already is searched through its base again. Adopting makes a base, so only who
holds ``knowledge:write`` adopts (a ``widgets:write``-only client's import lists the store).
A store not adopted is listed among what did not carry over, with why: the rest of the import
goes on. An adopted base is marked
``adopted``: it takes no uploads, and deleting it leaves the store at OpenAI.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth.principals import TenantAccess
from kithost.auth.scopes import Scope
from kithost.db import lock_key
from kithost.kit.crypto import SecretBox
from kithost.models import KnowledgeBase, Tenant, Widget
from kithost.models.knowledge import MAX_KNOWLEDGE_BASES
from kithost.settings import Settings
from kithost.widgets.agent_import import ImportedAgent, Skipped

StoreAccess = Callable[[Settings, SecretBox, Tenant, Widget, str], Awaitable[str | None]]
"""Why a tenant may not adopt a vector store for its widget (None: its own key retrieves
it): ``(settings, box, tenant, widget, vector_store_id)``."""
_STORE_ACCESS: list[StoreAccess] = []
UNCHECKED = (
    "Kithost cannot check that this vector store is yours: upload its documents to a "
    "knowledge base."
)
HELD = (
    "Another tenant's knowledge base holds this vector store: upload its documents to a "
    "knowledge base of yours."
)
NOT_PERMITTED = (
    "Adopting this vector store makes a knowledge base, which needs knowledge:write: import "
    "again as someone who holds it."
)
FULL = (
    f"The tenant has {MAX_KNOWLEDGE_BASES} knowledge bases, the most it may have: delete one, "
    "then import again."
)


async def lock_bases(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Have the creations of the tenant's knowledge bases (made or adopted) take turns until
    the unit of work ends: their count is capped (``MAX_KNOWLEDGE_BASES``)."""
    await lock_key(session, f"knowledge_bases:{tenant_id}")


def checks_store_access(check: StoreAccess) -> None:
    """Have ``check`` say whether a tenant may adopt a store (``knowledge.service``
    registers as it is imported; without one, nothing is adopted)."""
    _STORE_ACCESS[:] = [check]


async def adopt_vector_stores(
    session: AsyncSession,
    settings: Settings,
    box: SecretBox,
    access: TenantAccess,
    widget: Widget,
    imported: ImportedAgent,
) -> dict[str, uuid.UUID]:
    """The knowledge base of each vector store of ``imported``'s file searches that is the
    tenant's: one it has already, else one adopted now; those that are not are added to
    ``imported.skipped`` with why."""
    bases: dict[str, uuid.UUID] = {}
    for store, line in imported.vector_stores.items():
        base = await _adopt(session, settings, box, access, widget, imported.name, store)
        if isinstance(base, uuid.UUID):
            bases[store] = base
        else:
            imported.skipped.append(Skipped(line, f"vector store {store}", base))
    return bases


async def _adopt(
    session: AsyncSession,
    settings: Settings,
    box: SecretBox,
    access: TenantAccess,
    widget: Widget,
    name: str,
    store: str,
) -> uuid.UUID | str:
    """The id of the tenant's base for ``store`` (adopted now if need be), or why not."""
    held = await _held(session, access, store)
    if held is not None:
        return held
    if Scope.knowledge_write not in access.scopes:  # widgets:write searches bases, makes none
        return NOT_PERMITTED
    check = _STORE_ACCESS[0] if _STORE_ACCESS else None
    refused = (
        UNCHECKED if check is None else await check(settings, box, access.tenant, widget, store)
    )
    if refused is not None:
        return refused
    await lock_bases(session, access.tenant.id)
    held = await _held(session, access, store)  # adopted by a rival meanwhile
    if held is not None:
        return held
    count = select(func.count()).where(KnowledgeBase.tenant_id == access.tenant.id)
    if (await session.scalar(count) or 0) >= MAX_KNOWLEDGE_BASES:
        return FULL
    base = KnowledgeBase(
        tenant_id=access.tenant.id,
        name=f"{name} (imported)"[:200],
        description=f"Adopted from an Agent Builder export: {store}",
        vector_store_id=store,
        adopted=True,
    )
    try:
        async with session.begin_nested():
            session.add(base)
    except IntegrityError:  # another base holds it (unique, whichever tenant's)
        return await _held(session, access, store) or HELD
    audit.record(
        session,
        access.actor,
        "knowledge_base.adopted",
        tenant_id=access.tenant.id,
        target_type="knowledge_base",
        target_id=base.id,
        data={"vector_stores": [store]},
    )
    return base.id


async def _held(session: AsyncSession, access: TenantAccess, store: str) -> uuid.UUID | None:
    """The tenant's base holding ``store``, if it has one."""
    return await session.scalar(
        select(KnowledgeBase.id).where(
            KnowledgeBase.tenant_id == access.tenant.id, KnowledgeBase.vector_store_id == store
        )
    )
