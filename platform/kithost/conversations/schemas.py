from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from kithost.kit import pseudonyms
from kithost.kit.schemas import Instant, Schema


class FeedbackFilter(StrEnum):
    any = "any"
    positive = "positive"
    negative = "negative"


class ConversationFilters(Schema):
    """Which conversations: a list, an export."""

    widget: uuid.UUID | None = None
    since: Instant | None = Field(default=None, description="Last activity at or after.")
    until: Instant | None = Field(default=None, description="Last activity before.")
    end_user: str | None = Field(
        default=None,
        max_length=210,
        description="A verified end user, `u:…`, or an anonymous one by their own id "
        "(`a:anon_…`); never the `a:h_…` the list shows (422).",
    )
    feedback: FeedbackFilter | None = Field(
        default=None, description="Threads with feedback of this kind."
    )
    min_messages: int | None = Field(default=None, ge=1, le=10_000)
    reviewed: bool | None = None
    has_error: bool | None = Field(
        default=None, description="Threads with a failed response (or without any)."
    )
    has_attachments: bool | None = Field(
        default=None, description="Threads with a file the visitor attached (or without)."
    )
    q: str | None = Field(
        default=None, min_length=2, max_length=200, description="Words in the messages."
    )

    # A filter that can match nothing is refused on its field: an empty list would say there
    # is no such conversation.

    @field_validator("until")
    @classmethod
    def _after_since(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if until is not None and since is not None and until <= since:
            raise PydanticCustomError("value", "must be after since")
        return until

    @field_validator("end_user")
    @classmethod
    def _not_a_pseudonym(cls, end_user: str | None) -> str | None:
        if end_user is not None and end_user.startswith(pseudonyms.PREFIX):
            raise PydanticCustomError(
                "pseudonym",
                "a:h_… is how Kithost shows an anonymous visitor, a keyed hash matching no "
                "stored id: give the visitor's own id (a:anon_…)",
            )
        return end_user


class ConversationQuery(ConversationFilters):
    before: str | None = Field(
        default=None, max_length=160, description="The `next` of the previous page."
    )
    limit: int = Field(default=50, ge=1, le=200)


class Conversation(Schema):
    id: str
    widget_id: uuid.UUID
    end_user: str
    """``u:…`` as the tenant's backend named them; anonymous visitors as ``a:h_…`` (a keyed
    hash: a device id is a credential)."""
    title: str | None
    messages: int
    positive_feedback: int
    negative_feedback: int
    first_activity: datetime
    last_activity: datetime
    reviewed: bool
    responses: int
    """Answers that finished (as analytics recorded them, within its retention)."""
    first_token_p50_ms: float | None
    """The median time from the visitor's message to the answer's first word; null when
    no answer has a first word on record."""
    input_tokens: int
    output_tokens: int
    """The model's token counts, summed over the answers (where the model reported them)."""


class ConversationPage(Schema):
    data: list[Conversation]
    next: str | None
    """Pass as ``before`` for the next page; null on the last."""


class Answer(Schema):
    """How long an answer took and what it cost, as the chat runtime reported it."""

    first_token_ms: float | None
    total_ms: float
    input_tokens: int | None
    output_tokens: int | None


class TranscriptItem(Schema):
    id: str
    type: str
    created_at: datetime
    text: str
    """The item's text (a message's, or empty)."""
    feedback: str | None
    item: dict[str, Any]
    """The item as ChatKit stored it (annotations, attachments, tool calls, hidden context)."""
    answer: Answer | None = None
    """An assistant message's answer: its latency and tokens (null when not on record)."""


class Review(Schema):
    """Staff's note and the reviewed flag: never shown to the visitor."""

    note: str
    reviewed: bool
    updated_by: str | None
    updated_at: datetime


class ReviewUpdate(Schema):
    note: str | None = Field(default=None, max_length=5000)
    reviewed: bool | None = None


class Transcript(Conversation):
    items: list[TranscriptItem]
    review: Review | None


class TranscriptPage(Transcript):
    """A conversation with a page of its items (an export line holds them all, no ``next``)."""

    next: str | None
    """Pass as ``after`` for the conversation's next items; null when these are its last."""


class ConversationSettings(Schema):
    """Who may read the tenant's conversations besides owners and admins (viewers never)."""

    editors_may_read: bool
    """Editors hold ``conversations:read``: they list, read and export them (reviewing and
    deleting need ``conversations:write``: owners and admins)."""


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    """One conversation a line, with its items (as ``export.jsonl``)."""
    csv = "csv"
    """One item a row (as ``export.csv``)."""


class ExportCreate(Schema):
    format: ExportFormat
    filters: ConversationFilters = Field(default_factory=ConversationFilters)


class Export(Schema):
    """An export written in the background; once ``ready``, ``download_url`` is a link that
    needs no credentials and works until ``download_expires_at`` (ask again for a new one)."""

    id: uuid.UUID
    format: ExportFormat
    filters: dict[str, Any]
    status: str
    """``pending``, then ``ready``; ``failed`` when the file could not be written (not
    after a passing fault, which the worker waits out); ``invalidated`` once a conversation
    it holds is deleted (its file is deleted with it): ask for a new export."""
    size_bytes: int | None
    created_at: datetime
    finished_at: datetime | None
    kept_until: datetime | None = None
    """When the export and its file are deleted (a day after it was asked for)."""
    download_url: str | None = None
    download_expires_at: datetime | None = None
