"""Large exports: ``POST …/conversations/exports`` records the request (audited) and a task
writes the file (the same lines as the streamed exports, a page at a time, through a
temporary file into the blob storage: never whole in memory); once it is ready,
``GET …/exports/{id}`` hands out a download link signed for ``LINK_TTL``. An export is
kept for ``KEPT`` after it was asked for, then :func:`purge_expired` deletes it with its
file (hourly).

An export never outlives a conversation it holds: the task records each conversation it
writes (``ConversationExportThread``) before it publishes the file, and an export holding
one deleted since is *invalidated* (:func:`invalidate`): its file deleted, its download 410
``export_invalidated``. Every deletion of a conversation (staff's, the visitor's, the end
user's, retention's, a widget's) invalidates them in its unit of work, whose commit sends
their files' deletion: ``chat.repository.delete_threads``, which they all end in, runs
:func:`invalidate` on the threads it deleted (registered with
``chat.repository.on_threads_deleted``, since ``chat`` sits below ``conversations``).

A file written while one of its conversations is deleted is not published: the task records
the conversations it wrote (:func:`_hold`) with their threads' rows locked until that
commits (``FOR KEY SHARE``), and publishes the file only if every one it recorded is still
there (:func:`_finish`). So a deletion under way when they are recorded either waits for the
record and then finds it (the export is invalidated), or the record waits for the deletion's
commit (the task then finds the conversation gone); one deleted before it is recorded is
found gone as well. On SQLite, one writer at a time, they take turns anyway.

A link is ``/api/v1/conversation-exports/ex_`` + ``tenant.export.expiry.actor`` (hex ids,
Unix seconds, the caller it was made for as ``auth.standing.actor_text``) + ``.`` + its HMAC
(``kit.signed``): bound to its tenant and export, it needs no credentials, a forged one is
404 and an expired one 410, and every download is in the audit log as the caller the link
was made for. So it works only while that caller may still read conversations
(``auth.standing.scopes_now``): once they are removed, given a lower role, a revoked client
or an editor after the tenant stopped letting editors read, their links answer 404."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.audit import service as audit
from kithost.auth.principals import Actor, TenantAccess
from kithost.auth.scopes import Scope
from kithost.auth.standing import actor_of, actor_text, scopes_now
from kithost.chat.repository import on_threads_deleted
from kithost.chat.tasks import delete_blobs
from kithost.conversations import repository, service, tasks
from kithost.conversations.schemas import (
    ConversationFilters,
    Export,
    ExportCreate,
    ExportFormat,
)
from kithost.db import Sessionmaker, lock_key, session_scope
from kithost.errors import Conflict, Gone, NotFound
from kithost.kit.keys import Keys
from kithost.kit.signed import signed, verified
from kithost.models import ConversationExport, ExportStatus, Tenant
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.storage import BlobStorage
from kithost.tenants import service as tenants
from kithost.worker.database import RETRY
from kithost.worker.enqueue import enqueue

MAX_PENDING = 3
"""A tenant's exports being written at once: each reads every conversation it matches, so
clicks (or a script) cannot queue them without bound; another waits until one is done."""
LINK_TTL = timedelta(minutes=10)
KEPT = timedelta(days=1)
"""How long an export (its row and its file) is kept after it was asked for: its
transcripts outlive neither the conversations' retention nor an end user's erasure by more
than that."""
PREFIX = "ex_"
PURPOSE = b"kithost conversation export"
MEDIA_TYPES = {ExportFormat.jsonl: "application/x-ndjson", ExportFormat.csv: "text/csv"}
EXPORTERS: dict[ExportFormat, service.Exporter] = {
    ExportFormat.jsonl: service.export_lines,
    ExportFormat.csv: service.export_csv,
}


@dataclass(frozen=True)
class Link:
    tenant_id: uuid.UUID
    export_id: uuid.UUID
    expires_at: datetime
    actor: Actor
    """Who the link was made for: the download is audited as them."""


def blob_key(export: ConversationExport) -> str:
    return f"{export.tenant_id}/exports/{export.id}.{export.format}"


async def create(
    session: AsyncSession, access: TenantAccess, body: ExportCreate, keys: Keys
) -> ConversationExport:
    """Record an export (audited, ``keys`` hashing an anonymous end user there) and have a
    worker write it: 409 ``too_many_exports`` while the tenant has ``MAX_PENDING`` being
    written (requests at once take turns counting them)."""
    await lock_key(session, f"kithost.conversations.exports:{access.tenant.id}")
    if await repository.pending_exports(session, access.tenant.id) >= MAX_PENDING:
        raise Conflict(
            f"{MAX_PENDING} exports are being written: ask again once one is ready.",
            code="too_many_exports",
        )
    export = ConversationExport(
        id=uuid.uuid4(),
        tenant_id=access.tenant.id,
        format=body.format.value,
        filters=service.filters_of(body.filters),
        requested_by=access.actor.id,
    )
    session.add(export)
    await session.flush()
    await service.record_export(session, access, body.filters, body.format.value, keys, export.id)
    enqueue(session, tasks.write_export, str(export.tenant_id), str(export.id))
    return export


async def get(
    session: AsyncSession, access: TenantAccess, export_id: uuid.UUID
) -> ConversationExport:
    """The tenant's export: 404 ``export_not_found`` when there is none."""
    export = await repository.export(session, access.tenant.id, export_id)
    if export is None:
        raise NotFound("No such export.", code="export_not_found")
    return export


def shown(
    settings: Settings,
    export: ConversationExport,
    actor: Actor,
    url: Callable[[str], str],
    now: datetime,
) -> Export:
    """The export as the API shows it; once it is ready, and until it is deleted, with a
    fresh link for ``actor`` (``url``: the download route's URL for a token)."""
    kept_until = export.created_at + KEPT
    filters = service.shown_filters(export.filters, settings.keys())
    shown = Export.model_validate(export).model_copy(
        update={"kept_until": kept_until, "filters": filters}
    )
    if export.status is not ExportStatus.ready or now >= kept_until:
        return shown
    expires_at = min(now + LINK_TTL, kept_until)
    who = actor_text(actor)
    payload = f"{export.tenant_id.hex}.{export.id.hex}.{int(expires_at.timestamp())}.{who}"
    token = PREFIX + signed(settings.keys(), PURPOSE, payload)
    return shown.model_copy(update={"download_url": url(token), "download_expires_at": expires_at})


def read_link(settings: Settings, token: str, now: datetime) -> Link:
    """The link ``token`` stands for: 404 ``download_not_found`` when it is not one Kithost
    signed, 410 ``download_link_expired`` when its time is over."""
    payload = verified(settings.keys(), PURPOSE, token.removeprefix(PREFIX))
    if not token.startswith(PREFIX) or payload is None:
        raise NotFound("No such download.", code="download_not_found")
    try:
        tenant, export, expiry, who = payload.split(".")
        link = Link(
            uuid.UUID(hex=tenant),
            uuid.UUID(hex=export),
            datetime.fromtimestamp(int(expiry), UTC),
            actor_of(who),
        )
    except ValueError as malformed:  # signed by us: never, but not a 500
        raise NotFound("No such download.", code="download_not_found") from malformed
    if link.expires_at <= now:
        raise Gone(
            "This download link has expired: ask for a new one.", code="download_link_expired"
        )
    return link


async def download(session: AsyncSession, link: Link) -> ConversationExport:
    """The ready export a valid link names, its download audited as the link's caller;
    404 ``download_not_found`` as well when that caller may no longer read conversations
    (nothing is audited then: the download did not happen), 410 ``export_invalidated`` when
    it holds a conversation deleted since it was written."""
    await rls.set_tenant(session, link.tenant_id)
    export = await repository.export(session, link.tenant_id, link.export_id)
    if (
        export is None
        or export.status not in (ExportStatus.ready, ExportStatus.invalidated)
        or Scope.conversations_read not in await scopes_now(session, link.tenant_id, link.actor)
    ):
        raise NotFound("No such download.", code="download_not_found")
    if export.status is ExportStatus.invalidated:
        raise Gone(
            "A conversation this export holds was deleted: ask for a new export.",
            code="export_invalidated",
        )
    audit.record(
        session,
        link.actor,
        "conversations.export_downloaded",
        tenant_id=export.tenant_id,
        target_type="conversation_export",
        target_id=export.id,
    )
    return export


async def invalidate(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    exports: Sequence[uuid.UUID] | None = None,
    threads: Sequence[str] | None = None,
) -> int:
    """Invalidate the tenant's exports (among ``exports``, or holding one of ``threads``) that
    hold a conversation deleted since they were written, and delete their files
    after the commit (``kithost.chat.delete_blobs``; one still being written is not
    published, :func:`write`); how many. Every deletion of threads runs it on them."""
    lost = await repository.lost_exports(session, tenant_id, exports=exports, threads=threads)
    for export in lost:
        export.status = ExportStatus.invalidated
        await repository.forget_threads(session, tenant_id, export.id)
    if lost:
        enqueue(session, delete_blobs, str(tenant_id), [blob_key(e) for e in lost])
    return len(lost)


on_threads_deleted(invalidate)


async def purge_expired(sessionmaker: Sessionmaker, now: datetime) -> int:
    """Delete every tenant's exports asked for more than ``KEPT`` before ``now`` (each
    locked first: one deleted meanwhile, by a tenant's deletion or another purge, is left to
    it); after the commit, delete their files (``kithost.chat.delete_blobs``). How many were
    deleted."""
    cutoff = now - KEPT
    async with session_scope(sessionmaker) as session, rls.bypassing(session, rls.Bypass.sweep):
        tenants = await repository.tenants_with_exports(session)
    purged = 0
    for tenant_id in tenants:
        async with session_scope(sessionmaker, tenant=tenant_id) as session:
            expired: list[ConversationExport] = []
            for found in await repository.exports_before(session, tenant_id, cutoff):
                export = await repository.export(session, tenant_id, found.id, lock=True)
                if export is not None:
                    await session.delete(export)
                    expired.append(export)
            if expired:
                enqueue(session, delete_blobs, str(tenant_id), [blob_key(e) for e in expired])
            purged += len(expired)
    return purged


async def delete_tenant_exports(session: AsyncSession, tenant: Tenant) -> None:
    """The files of a tenant being deleted, removed after the commit (the rows go with it)."""
    exports = await repository.exports_before(session, tenant.id, None)
    if exports:
        enqueue(session, delete_blobs, str(tenant.id), [blob_key(e) for e in exports])


tenants.owns_tenant_data(delete_tenant_exports)


async def write(
    sessionmaker: Sessionmaker,
    storage: BlobStorage,
    keys: Keys,
    tenant_id: uuid.UUID,
    export_id: uuid.UUID,
) -> bool:
    """Write a pending export's file and mark it ready (the task's work; run again after a
    crash, it writes the file again), or failed when that raised anything but a passing
    fault (``worker.database.RETRY``). Whether it became ready: not when it was deleted or
    invalidated meanwhile, nor when a conversation it holds was deleted while it was being
    written (it is invalidated then); its file is not kept then."""
    async with session_scope(sessionmaker, tenant=tenant_id) as session:
        export = await repository.export(session, tenant_id, export_id)
        if export is None or export.status is not ExportStatus.pending:
            return False
        await repository.forget_threads(session, tenant_id, export_id)  # an earlier run's
        exporter = EXPORTERS[ExportFormat(export.format)]
        stored, name = export.filters, blob_key(export)
    try:  # filters stored before a rule refused them fail the export
        filters = ConversationFilters.model_validate(stored)
        size = await _written(
            sessionmaker, storage, keys, tenant_id, export_id, exporter, filters, name
        )
    except RETRY["autoretry_for"]:
        raise  # the task tries again
    except Exception:
        await _finish(sessionmaker, tenant_id, export_id, None)
        raise
    if size is None:
        return False
    if not await _finish(sessionmaker, tenant_id, export_id, size):
        await storage.delete([name])
        return False
    return True


async def _written(
    sessionmaker: Sessionmaker,
    storage: BlobStorage,
    keys: Keys,
    tenant_id: uuid.UUID,
    export_id: uuid.UUID,
    exporter: service.Exporter,
    filters: ConversationFilters,
    name: str,
) -> int | None:
    """The export written through a temporary file into ``name``, the conversations it holds
    recorded as they are written; its size, or None (nothing stored) when the export was
    deleted or invalidated meanwhile."""
    with tempfile.TemporaryFile(prefix="kithost-export-") as file:
        held: list[str] = []
        last: str | None = None
        async for part in exporter(sessionmaker, tenant_id, filters, keys):
            file.write(part.text.encode())
            if part.thread_id not in (None, last):
                last = part.thread_id
                held.append(last)
            if len(held) == service.EXPORT_PAGE:
                if not await _hold(sessionmaker, tenant_id, export_id, held):
                    return None
                held = []
        if held and not await _hold(sessionmaker, tenant_id, export_id, held):
            return None
        size = file.tell()
        await storage.put_file(name, file)
        return size


async def _hold(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, export_id: uuid.UUID, thread_ids: list[str]
) -> bool:
    """Record that the export holds ``thread_ids``, their threads locked until it commits
    (see the module's docstring); False when it is no longer pending."""
    async with session_scope(sessionmaker, tenant=tenant_id) as session:
        await repository.lock_threads(session, tenant_id, thread_ids)
        export = await repository.export(session, tenant_id, export_id, lock=True)
        if export is None or export.status is not ExportStatus.pending:
            return False
        await repository.hold_threads(session, tenant_id, export_id, thread_ids)
        return True


async def _finish(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, export_id: uuid.UUID, size: int | None
) -> bool:
    """Mark the pending export ready (``size``: its file's), or failed (None); invalidated
    instead of ready when a conversation it holds is gone. Whether it became ready."""
    async with session_scope(sessionmaker, tenant=tenant_id) as session:
        export = await repository.export(session, tenant_id, export_id, lock=True)
        if export is None or export.status is not ExportStatus.pending:
            return False
        export.finished_at = utcnow()
        if size is None:
            export.status = ExportStatus.failed
            return False
        if await invalidate(session, tenant_id, exports=[export_id]):
            return False
        export.status, export.size_bytes = ExportStatus.ready, size
        return True
