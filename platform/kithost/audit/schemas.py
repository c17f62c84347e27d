from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from kithost.kit.schemas import Instant, Schema


class AuditEntry(Schema):
    """Who did what, when, to what. ``data`` holds the details of the action, for changes
    ``{"before": {...}, "after": {...}}`` with the fields that changed; never a secret."""

    id: uuid.UUID
    created_at: datetime
    actor_type: str = Field(examples=["user", "client", "cli", "system"])
    actor_id: str | None = Field(
        description="The user's id, the API client's `client_id`; null for the CLI and the system."
    )
    action: str = Field(examples=["member.role_changed"])
    target_type: str | None
    target_id: str | None
    data: dict[str, Any]
    request_id: str | None = Field(description="The `X-Request-ID` of the request that acted.")


class AuditPage(Schema):
    entries: list[AuditEntry]
    next_cursor: str | None = Field(
        description="Pass it as `cursor` for the next page; null on the last page."
    )


class AuditQuery(Schema):
    """Filters and position of an audit listing; filters combine with AND."""

    action: str | None = Field(None, max_length=64, examples=["member.role_changed"])
    target_type: str | None = Field(None, max_length=32, examples=["widget"])
    target_id: str | None = Field(None, max_length=64)
    since: Instant | None = Field(None, description="Entries at or after this time.")
    until: Instant | None = Field(None, description="Entries before this time.")
    cursor: str | None = Field(None, description="The `next_cursor` of the previous page.")
    limit: int = Field(50, ge=1, le=200)
