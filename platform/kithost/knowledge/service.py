"""Knowledge bases as tenants change them (through the API); OpenAI's side follows in
tasks (``ingest``) once the change has committed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PureWindowsPath

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from kithost.audit import service as audit
from kithost.auth.principals import TenantAccess
from kithost.db import lock_key
from kithost.errors import (
    Conflict,
    FieldError,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    invalid_field,
)
from kithost.kit.schemas import NUL_MESSAGE, has_nul
from kithost.kit.visible import INVISIBLE_MESSAGE, INVISIBLE_TYPE, has_invisible
from kithost.knowledge import repository
from kithost.knowledge.ingest import blob_key, store_access
from kithost.knowledge.repository import Figures
from kithost.knowledge.tasks import ingest, remove
from kithost.models import DocumentStatus, KnowledgeBase, KnowledgeDocument, Tenant
from kithost.models.knowledge import MAX_KNOWLEDGE_BASES
from kithost.storage import BlobStorage
from kithost.tenants import service as tenants
from kithost.widgets import adoption
from kithost.worker.enqueue import enqueue

CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
"""The documents a knowledge base takes, by file name extension."""
MAX_DOCUMENTS = 200
"""Per knowledge base."""
FILENAME_MAX_LENGTH = 255
"""As the column holds (``models.knowledge``)."""


@dataclass(frozen=True)
class Summary:
    """A base, its documents counted (in SQL, as :func:`list_bases` counts them) and its
    documents, read in one statement (:func:`repository.base_with_documents`)."""

    base: KnowledgeBase
    figures: Figures
    documents: Sequence[KnowledgeDocument]


async def create_base(
    session: AsyncSession, access: TenantAccess, *, name: str, description: str
) -> Summary:
    """A new, empty base; 409 ``knowledge_bases_full`` when the tenant has
    :data:`~kithost.models.knowledge.MAX_KNOWLEDGE_BASES` (counted one creation at a time:
    ``adoption.lock_bases``)."""
    await adoption.lock_bases(session, access.tenant.id)
    if await repository.count_bases(session, access.tenant.id) >= MAX_KNOWLEDGE_BASES:
        raise Conflict(
            f"A tenant has at most {MAX_KNOWLEDGE_BASES} knowledge bases: delete one first.",
            code="knowledge_bases_full",
        )
    base = KnowledgeBase(tenant_id=access.tenant.id, name=name, description=description)
    session.add(base)
    await session.flush()
    _record(session, access, "knowledge_base.created", base.id, {"name": name})
    return await get_base(session, access.tenant, base.id)


async def list_bases(session: AsyncSession, tenant: Tenant) -> list[tuple[KnowledgeBase, Figures]]:
    """The tenant's bases, oldest first, with their documents counted (none loaded)."""
    return await repository.list_bases_with_figures(session, tenant.id)


async def get_base(session: AsyncSession, tenant: Tenant, base_id: uuid.UUID) -> Summary:
    """The base with its figures and documents, read at one moment (they always agree)."""
    found = await repository.base_with_documents(session, tenant.id, base_id)
    if found is None:
        raise _no_base()
    return Summary(*found)


async def delete_base(session: AsyncSession, access: TenantAccess, base_id: uuid.UUID) -> None:
    """Remove the base and its documents; OpenAI's copies go behind the commit (an adopted
    base's vector store stays: it was the tenant's before). The base is locked first, so an
    upload under way either finishes before (and its document goes too) or finds no base.
    A base a widget's draft or published version searches is 409 ``knowledge_base_in_use``:
    deleting it would leave the live widget without it and its draft refusing every edit.
    Its documents are locked too: an ingest task writing a file id OpenAI just gave (see
    :func:`delete_document`) finishes first, and that file is removed with the rest."""
    base = await _base(session, access.tenant.id, base_id, lock=True)
    searching = await repository.widgets_searching(session, access.tenant.id, base.id)
    if searching:
        widgets = "; ".join(f"{name} ({which})" for name, which in searching[:5])
        more = f" and {len(searching) - 5} more" if len(searching) > 5 else ""
        raise Conflict(
            f"Widgets search this knowledge base: {widgets}{more}. Take it out of their "
            "file search (and publish) first.",
            code="knowledge_base_in_use",
        )
    documents = await repository.list_documents(session, access.tenant.id, [base.id], lock=True)
    _remove_upstream(session, access.tenant.id, base, documents)
    await session.delete(base)
    _record(session, access, "knowledge_base.deleted", base_id, {"name": base.name})


def document_name(filename: str) -> str:
    """The name an upload is kept under: the multipart form's ``filename`` without the
    directories a client may have put before it (``../x.md``, ``C:\\docs\\x.md``; RFC 7578
    §4.2), as browsers send it, nor the whitespace around it (`` guide.md `` is
    ``guide.md``)."""
    return PureWindowsPath(filename).name.strip()


def document_type(filename: str) -> str:
    """The content type of an upload named ``filename`` (a :func:`document_name`): 415 for a
    kind not taken; 422 on ``file`` for a name the database cannot keep (too long, or
    holding a NUL), one that would mislead whoever reads it (invisible or bidi control
    characters: ``a\u202etxt.exe.md`` shows as ``adm.exe.txt``), which the multipart form's
    own validation never looks at, or one with nothing before its extension (``.md``)."""
    if len(filename) > FILENAME_MAX_LENGTH:
        raise invalid_field(
            "file", f"the file's name may have at most {FILENAME_MAX_LENGTH} characters"
        )
    if has_nul(filename):
        raise invalid_field("file", f"the file's name: {NUL_MESSAGE}", type="nul_character")
    if has_invisible(filename):
        raise invalid_field("file", f"the file's name {INVISIBLE_MESSAGE}", type=INVISIBLE_TYPE)
    stem, dot, extension = filename.rpartition(".")
    content_type = CONTENT_TYPES.get(dot + extension.lower())
    if content_type is None:
        kinds = ", ".join(sorted(CONTENT_TYPES))
        raise UnsupportedMediaType(
            f"A knowledge base takes {kinds} files.", code="unsupported_document_type"
        )
    if not stem:
        raise invalid_field(
            "file", "the file's name has nothing before its extension", type="no_name"
        )
    return content_type


class NewBlobs:
    """The bytes uploads store ahead of their unit of work's commit (:func:`add_document`),
    deleted again by :meth:`discard` unless it committed: no document names them then, and
    nothing else would ever delete them. The upload route discards them when its unit of
    work fails, its commit too (``endpoints.new_blobs``)."""

    def __init__(self, storage: BlobStorage) -> None:
        self.storage = storage
        self.keys: list[str] = []
        self.committed = False

    async def put(self, session: AsyncSession, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` for what ``session`` writes."""
        if not self.keys:
            event.listen(session.sync_session, "after_commit", self._committed, once=True)
        self.keys.append(key)
        await self.storage.put(key, data)

    def _committed(self, _session: Session) -> None:
        self.committed = True

    async def discard(self, *keys: str) -> None:
        """Delete the bytes stored under ``keys`` (none given: all of them), unless their
        unit of work committed."""
        gone = [k for k in self.keys if k in keys] if keys else self.keys
        if gone and not self.committed:
            self.keys = [k for k in self.keys if k not in gone]
            await self.storage.delete(gone)


async def add_document(
    session: AsyncSession,
    blobs: NewBlobs,
    access: TenantAccess,
    base_id: uuid.UUID,
    *,
    filename: str,
    data: bytes,
    limit: int,
    quota: int,
) -> KnowledgeDocument:
    """Keep the upload and queue it for OpenAI (``tasks.ingest``, once this commits). Its
    bytes are stored first, under the new document's key, the base not locked: a write to
    the blob store takes seconds (S3), and every other write to the base would wait for it.
    Then the base is locked: uploads to it are counted one at a time (at most
    :data:`MAX_DOCUMENTS`), and its deletion waits, or went first (404); refused there (or
    failing), the bytes are deleted again, as they are should the unit of work not commit
    (:class:`NewBlobs`). An adopted base takes no uploads (409 ``knowledge_base_adopted``):
    its store is the tenant's at OpenAI. The tenant's documents hold at most ``quota`` bytes
    together (:func:`_check_quota`)."""
    base = await _base(session, access.tenant.id, base_id)
    filename = document_name(filename)
    content_type = document_type(filename)
    if len(data) > limit:
        raise PayloadTooLarge(f"A document may have at most {limit} bytes.")
    if not data:
        raise invalid_field("file", "the file is empty", type="empty")
    if base.adopted:  # made so, never changed
        raise Conflict(
            "An adopted knowledge base takes no uploads: add the document to its vector store "
            "at OpenAI, or upload it to a knowledge base of Kithost's.",
            code="knowledge_base_adopted",
        )
    await _check_quota(session, access.tenant.id, len(data), quota)
    document = KnowledgeDocument(
        id=uuid.uuid4(),
        tenant_id=access.tenant.id,
        knowledge_base_id=base.id,
        filename=filename,
        content_type=content_type,
        size_bytes=len(data),
        status=DocumentStatus.processing,
    )
    key = blob_key(access.tenant.id, document.id)
    await blobs.put(session, key, data)
    try:
        await _base(session, access.tenant.id, base_id, lock=True)
        if await repository.count_documents(session, access.tenant.id, base.id) >= MAX_DOCUMENTS:
            raise Conflict(
                f"A knowledge base holds at most {MAX_DOCUMENTS} documents.",
                code="knowledge_base_full",
            )
        await _check_quota(session, access.tenant.id, len(data), quota, lock=True)
        session.add(document)
        await session.flush()
    except BaseException:
        await blobs.discard(key)
        raise
    enqueue(session, ingest, str(access.tenant.id), str(document.id))
    _record(
        session,
        access,
        "knowledge_document.uploaded",
        base.id,
        {"document": str(document.id), "filename": filename, "size_bytes": len(data)},
    )
    return document


async def _check_quota(
    session: AsyncSession, tenant_id: uuid.UUID, size: int, quota: int, *, lock: bool = False
) -> None:
    """413 ``knowledge_quota_exceeded`` (on ``file``) when ``size`` more bytes would take the
    tenant's documents past ``quota`` (``KITHOST_KNOWLEDGE_MAX_BYTES_PER_TENANT``). Checked
    before the bytes are stored, so as not to store them for nothing, and again with
    ``lock``, the tenant's uploads (to any of its bases) counted one at a time, each after
    its base's lock (``db.lock_key``)."""
    if lock:
        await lock_key(session, f"knowledge.quota:{tenant_id}")
    used = await repository.tenant_bytes(session, tenant_id)
    if used + size > quota:
        message = (
            f"the tenant's knowledge documents may hold {quota} bytes together; "
            f"they hold {used}: delete some first"
        )
        raise PayloadTooLarge(
            f"This document would take the knowledge documents past their {quota} bytes.",
            code="knowledge_quota_exceeded",
            errors=[FieldError(field="file", message=message, type="knowledge_quota_exceeded")],
        )


async def delete_document(
    session: AsyncSession, access: TenantAccess, base_id: uuid.UUID, document_id: uuid.UUID
) -> None:
    """Remove the document; its OpenAI file goes behind the commit. It is locked first: an
    ingest task writing the id of the file OpenAI just made for it finishes before, and the
    removal takes that file (read unlocked, the id could be missed and the file left at
    OpenAI), or the task finds the document gone and deletes the file itself."""
    base = await _base(session, access.tenant.id, base_id)
    document = await repository.get_document(session, access.tenant.id, document_id, lock=True)
    if document is None or document.knowledge_base_id != base.id:
        raise NotFound("No such document.", code="document_not_found")
    _remove_upstream(session, access.tenant.id, base, [document], whole=False)
    await session.delete(document)
    _record(
        session,
        access,
        "knowledge_document.deleted",
        base.id,
        {"document": str(document.id), "filename": document.filename},
    )


async def _base(
    session: AsyncSession, tenant_id: uuid.UUID, base_id: uuid.UUID, *, lock: bool = False
) -> KnowledgeBase:
    base = await repository.get_base(session, tenant_id, base_id, lock=lock)
    if base is None:
        raise _no_base()
    return base


def _no_base() -> NotFound:
    return NotFound("No such knowledge base.", code="knowledge_base_not_found")


async def delete_tenant_knowledge(session: AsyncSession, tenant: Tenant) -> None:
    """Queue the removal of every base of a tenant being deleted from OpenAI and the blob
    store (adopted bases' vector stores stay), with the tenant's key as it is now (its row
    is gone when the task runs). The bases, then their documents, are locked as
    :func:`delete_base` locks them, so no OpenAI file id being written meanwhile is missed."""
    bases = await repository.lock_bases(session, tenant.id)
    documents = await repository.list_documents(
        session, tenant.id, [b.id for b in bases], lock=True
    )
    for base in bases:
        mine = [d for d in documents if d.knowledge_base_id == base.id]
        _remove_upstream(session, tenant.id, base, mine, tenant_key=tenant.openai_api_key)


tenants.owns_tenant_data(delete_tenant_knowledge)
adoption.checks_store_access(store_access)


def _remove_upstream(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    base: KnowledgeBase,
    documents: Sequence[KnowledgeDocument],
    *,
    whole: bool = True,
    tenant_key: str | None = None,
) -> None:
    """Queue the removal of ``documents`` from OpenAI and the blob store (and of the base's
    vector store itself when ``whole``, unless the base adopted it: then the store is left
    as it is, documents and all; ``tenant_key``: ``ingest.remove``'s)."""
    if base.adopted and not documents:
        return
    enqueue(
        session,
        remove,
        str(tenant_id),
        None if base.adopted else base.vector_store_id,
        [d.file_id for d in documents if d.file_id is not None],
        [blob_key(tenant_id, d.id) for d in documents],
        whole,
        tenant_key,
    )


def _record(
    session: AsyncSession,
    access: TenantAccess,
    action: str,
    base_id: uuid.UUID,
    data: dict[str, object],
) -> None:
    audit.record(
        session,
        access.actor,
        action,
        tenant_id=access.tenant.id,
        target_type="knowledge_base",
        target_id=base_id,
        data=data,
    )
