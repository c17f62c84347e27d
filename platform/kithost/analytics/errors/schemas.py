from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from kithost.kit.schemas import Schema
from kithost.models import ErrorStatus


class ErrorGroupOut(Schema):
    id: uuid.UUID
    widget_id: uuid.UUID
    fingerprint: str
    kind: str
    message: str = Field(description="Normalised: what varies between occurrences replaced.")
    frame: str | None
    hint: str | None
    sample: dict[str, Any] = Field(description="The data of the latest occurrence.")
    first_seen: datetime
    last_seen: datetime
    count: int
    affected_end_users: int = Field(
        description="Distinct end users who met it within the analytics retention."
    )
    status: ErrorStatus
    resolved_at: datetime | None


class ErrorGroupQuery(Schema):
    status: ErrorStatus | None = None
    widget: uuid.UUID | None = None
    cursor: Annotated[str, StringConstraints(max_length=100)] | None = None
    limit: int = Field(50, ge=1, le=200)


class ErrorGroupPage(Schema):
    groups: list[ErrorGroupOut]
    next_cursor: str | None
