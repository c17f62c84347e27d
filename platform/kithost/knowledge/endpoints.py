from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, UploadFile, status

from kithost.auth.dependencies import KnowledgeRead, KnowledgeWrite
from kithost.db import DbSession
from kithost.kit.schemas import TENANT_ERRORS, problems
from kithost.knowledge import schemas, service
from kithost.knowledge.repository import Figures
from kithost.models import KnowledgeBase
from kithost.models.knowledge import MAX_KNOWLEDGE_BASES
from kithost.state import AppSettings
from kithost.storage import storage_for

router = APIRouter(prefix="/tenants/{tenant}/knowledge-bases", tags=["knowledge"])

BASE_ERRORS = (*TENANT_ERRORS, 404)


async def new_blobs(settings: AppSettings) -> AsyncIterator[service.NewBlobs]:
    """The bytes a request stores ahead of its commit, deleted again should its unit of
    work fail, its commit too: declared before the route's session (and its access, which
    opens the session), it ends after the session does, and sees how."""
    blobs = service.NewBlobs(storage_for(settings))
    try:
        yield blobs
    except BaseException:
        await blobs.discard()
        raise


NewBlobs = Annotated[service.NewBlobs, Depends(new_blobs, scope="function")]


def _base(base: KnowledgeBase, figures: Figures) -> schemas.KnowledgeBase:
    return schemas.KnowledgeBase(
        id=base.id,
        name=base.name,
        description=base.description,
        **figures._asdict(),
        created_at=base.created_at,
    )


def _detail(summary: service.Summary) -> schemas.KnowledgeBaseDetail:
    files = [schemas.KnowledgeDocument.model_validate(d) for d in summary.documents]
    base = _base(summary.base, summary.figures)
    return schemas.KnowledgeBaseDetail(**base.model_dump(), files=files)


@router.post(
    "",
    summary="Create a knowledge base",
    description=f"A tenant has at most {MAX_KNOWLEDGE_BASES} (409 `knowledge_bases_full`).",
    status_code=status.HTTP_201_CREATED,
    responses=problems(*TENANT_ERRORS, 409),
)
async def create_knowledge_base(
    access: KnowledgeWrite, session: DbSession, body: schemas.KnowledgeBaseCreate
) -> schemas.KnowledgeBaseDetail:
    summary = await service.create_base(
        session, access, name=body.name, description=body.description
    )
    return _detail(summary)


@router.get("", summary="List the knowledge bases", responses=problems(*TENANT_ERRORS))
async def list_knowledge_bases(
    access: KnowledgeRead, session: DbSession
) -> list[schemas.KnowledgeBase]:
    return [_base(b, figures) for b, figures in await service.list_bases(session, access.tenant)]


@router.get("/{id}", summary="A knowledge base and its documents", responses=problems(*BASE_ERRORS))
async def get_knowledge_base(
    access: KnowledgeRead, session: DbSession, id: uuid.UUID
) -> schemas.KnowledgeBaseDetail:
    return _detail(await service.get_base(session, access.tenant, id))


@router.delete(
    "/{id}",
    summary="Delete a knowledge base",
    description="Its documents go too, here at once and at OpenAI shortly after. A base a "
    "widget's draft or published version searches is 409 `knowledge_base_in_use`.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*BASE_ERRORS, 409),
)
async def delete_knowledge_base(access: KnowledgeWrite, session: DbSession, id: uuid.UUID) -> None:
    await service.delete_base(session, access, id)


@router.post(
    "/{id}/documents",
    summary="Upload a document",
    description="PDF, Markdown, HTML, plain text or DOCX, by file name, of at most "
    f"`KITHOST_KNOWLEDGE_DOCUMENT_MAX_BYTES` (10 MiB); at most {service.MAX_DOCUMENTS} per "
    "knowledge base. The name is kept without its directories and the whitespace around it, "
    "and needs something before its extension (422 on `file`: `.md` alone is refused). "
    "It is `processing` until OpenAI has indexed it, then `ready` (or `failed` with a reason). "
    "A tenant's documents hold at most `KITHOST_KNOWLEDGE_MAX_BYTES_PER_TENANT` (1 GiB) "
    "together, whatever their status (413 `knowledge_quota_exceeded`).",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(*BASE_ERRORS, 409, 413, 415),
)
async def upload_document(
    blobs: NewBlobs,
    access: KnowledgeWrite,
    session: DbSession,
    settings: AppSettings,
    id: uuid.UUID,
    file: UploadFile,
) -> schemas.KnowledgeDocument:
    limit = settings.knowledge_document_max_bytes
    data = await file.read(limit + 1)
    document = await service.add_document(
        session,
        blobs,
        access,
        id,
        filename=file.filename or "",
        data=data,
        limit=limit,
        quota=settings.knowledge_max_bytes_per_tenant,
    )
    return schemas.KnowledgeDocument.model_validate(document)


@router.delete(
    "/{id}/documents/{document_id}",
    summary="Delete a document",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(*BASE_ERRORS),
)
async def delete_document(
    access: KnowledgeWrite, session: DbSession, id: uuid.UUID, document_id: uuid.UUID
) -> None:
    await service.delete_document(session, access, id, document_id)
