from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from kithost.kit.schemas import Name, Schema
from kithost.models import DocumentStatus


class KnowledgeBaseCreate(Schema):
    name: Name
    description: str = Field(default="", max_length=1000)


class KnowledgeDocument(Schema):
    """An uploaded file: ``processing`` until OpenAI has indexed it, then ``ready``, or
    ``failed`` with a reason to show."""

    id: uuid.UUID
    filename: str
    content_type: str
    size_bytes: int
    status: DocumentStatus
    failure_reason: str | None
    created_at: datetime


class KnowledgeBase(Schema):
    id: uuid.UUID
    name: str
    description: str
    documents: int
    """How many documents it holds, whatever their status."""
    size_bytes: int
    processing: int
    failed: int
    created_at: datetime


class KnowledgeBaseDetail(KnowledgeBase):
    files: list[KnowledgeDocument]
    """Its documents, oldest first."""
