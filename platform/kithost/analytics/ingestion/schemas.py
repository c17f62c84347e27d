from __future__ import annotations

from pydantic import Field

from kithost.kit.schemas import Schema


class DroppedEvent(Schema):
    index: int = Field(description="Position of the event in the batch.")
    id: str | None
    code: str = Field(
        examples=[
            "unknown_name",
            "server_name",
            "invalid_id",
            "invalid_time",
            "too_old",
            "invalid_data",
            "data_too_large",
            "duplicate_id",
            "invalid_event",
        ]
    )
    field: str
    message: str


class Accepted(Schema):
    """What ``POST /v1/embed/{pk}/events`` kept, and why it dropped the others."""

    accepted: int
    dropped: list[DroppedEvent]
