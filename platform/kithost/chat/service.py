"""Chat data as a whole, for retention and erasure: registered with analytics' retention
(:class:`kithost.analytics.retention.service.DataOwner` ``"chat"``), with the widgets'
deletion (:func:`kithost.widgets.service.owns_widget_data`) and with the tenants'
(:func:`kithost.tenants.service.owns_tenant_data`) when this module is imported, so the
hourly purge, end-user deletions and a widget's or a tenant's deletion reach it.

Both run in the caller's unit of work: rows go with its commit, and the attachments' bytes
are removed after it by the ``kithost.chat.delete_blobs`` task (never before: a rollback
must not leave rows without bytes). Both return the number of rows deleted (threads, items
and attachments; not the quota uses they delete with them, ``models.ChatQuotaUse``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, true
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.retention import service as retention
from kithost.chat import repository
from kithost.chat.attachments import UNSENT_LIFETIME
from kithost.chat.store import quota_window_start
from kithost.chat.tasks import delete_blobs
from kithost.models import ChatAttachment, ChatQuotaUse, ChatThread, Tenant
from kithost.models.base import utcnow
from kithost.tenants import service as tenants
from kithost.widgets import service as widgets
from kithost.worker.enqueue import enqueue


async def delete_end_user_data(
    session: AsyncSession, tenant_id: uuid.UUID, end_user_id: str
) -> int:
    """Erase everything an end user said or sent to any widget of the tenant (and what
    their quota counted)."""
    await repository.delete_quota_uses(session, tenant_id, ChatQuotaUse.end_user_id == end_user_id)
    return await _delete(
        session,
        tenant_id,
        threads=ChatThread.end_user_id == end_user_id,
        attachments=ChatAttachment.end_user_id == end_user_id,
    )


async def delete_thread(session: AsyncSession, tenant_id: uuid.UUID, thread_id: str) -> int:
    """Delete one of the tenant's conversations (a staff member's decision)."""
    return await _delete(
        session, tenant_id, threads=ChatThread.id == thread_id, attachments=false()
    )


async def delete_widget_data(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID
) -> int:
    """Erase everything said or sent to one of the tenant's widgets (it is being deleted:
    its rows would go with it, its attachments' bytes would stay)."""
    return await _delete(
        session,
        tenant_id,
        threads=ChatThread.widget_id == widget_id,
        attachments=ChatAttachment.widget_id == widget_id,
    )


async def delete_tenant_data(session: AsyncSession, tenant: Tenant) -> int:
    """Erase everything said or sent to any of the tenant's widgets (it is being deleted)."""
    return await _delete(session, tenant.id, threads=true(), attachments=true())


async def purge_before(session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime) -> int:
    """Delete the tenant's conversations idle since before ``cutoff`` (a conversation is kept
    whole while it is in use: one being written to, its thread held, is not idle, and is
    left for the next purge) and attachments never sent, created before it or longer than
    :data:`~kithost.chat.attachments.UNSENT_LIFETIME` ago; quota uses the quota's window has
    passed (they count for nothing)."""
    unsent_cutoff = max(cutoff, utcnow() - UNSENT_LIFETIME)
    expired = max(cutoff, quota_window_start())
    await repository.delete_quota_uses(session, tenant_id, ChatQuotaUse.created_at < expired)
    return await _delete(
        session,
        tenant_id,
        threads=ChatThread.updated_at < cutoff,
        attachments=ChatAttachment.created_at < unsent_cutoff,
        skip_locked=True,
    )


async def _delete(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    threads: ColumnElement[bool],
    attachments: ColumnElement[bool],
    skip_locked: bool = False,
) -> int:
    in_threads, keys = await repository.delete_threads(
        session, and_(ChatThread.tenant_id == tenant_id, threads), skip_locked=skip_locked
    )
    loose, loose_keys = await repository.delete_loose_attachments(session, tenant_id, attachments)
    if keys or loose_keys:
        enqueue(session, delete_blobs, str(tenant_id), keys + loose_keys)
    return in_threads + loose


retention.register(retention.DataOwner("chat", purge_before, delete_end_user_data))
widgets.owns_widget_data(delete_widget_data)
tenants.owns_tenant_data(delete_tenant_data)
