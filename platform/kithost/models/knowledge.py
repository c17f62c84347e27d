from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kithost.models.base import TenantOwned, str_enum

MAX_KNOWLEDGE_BASES = 100
"""A tenant's knowledge bases, made or adopted: each holds up to 200 documents, which a
tenant without a key of its own stores in the platform's OpenAI project."""


class KnowledgeBase(TenantOwned):
    """A tenant's set of documents an agent searches (``file_search``): an OpenAI vector
    store made with the tenant's key on the first upload, or one that existed already,
    ``adopted`` (an imported Agent Builder export's: ``widgets.adoption``)."""

    __tablename__ = "knowledge_bases"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    vector_store_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    """OpenAI's id of the vector store; None until the first document is processed. One
    base per store, across tenants."""
    adopted: Mapped[bool] = mapped_column(default=False)
    """The store was the tenant's before (its documents stay OpenAI's): the base takes no
    uploads, and deleting it leaves the store at OpenAI."""


class DocumentStatus(StrEnum):
    processing = "processing"
    ready = "ready"
    failed = "failed"


class KnowledgeDocument(TenantOwned):
    """One uploaded file of a knowledge base. Its bytes wait in the blob store until a task
    has handed them to OpenAI (``file_id``) and the vector store has indexed them."""

    __tablename__ = "knowledge_documents"

    knowledge_base_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("knowledge_bases.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[DocumentStatus] = mapped_column(
        str_enum(DocumentStatus), default=DocumentStatus.processing
    )
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    file_id: Mapped[str | None] = mapped_column(String(128))
    """OpenAI's id of the uploaded file; None until the upload went through."""
