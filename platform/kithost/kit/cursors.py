"""Cursors of the API's keyset-paginated lists (the audit log, error groups, conversations,
webhook deliveries).

A cursor says where the previous page's last row stands: its time and, among rows of the
same time, its id; the next page is the rows strictly after that position. It is opaque to
clients (base64url) and names a position, not a row: a row that changes or goes away
between two pages neither ends the listing nor shifts it.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from kithost.errors import invalid_field
from kithost.kit.schemas import has_nul

Id = TypeVar("Id", str, uuid.UUID)
Row = TypeVar("Row")
Position = tuple[datetime, Id]
"""Where a row stands in a list: its time and its id (a ``str`` or a UUID)."""


def encode(time: datetime, id: str | uuid.UUID) -> str:
    """The cursor of the position (``time``, ``id``)."""
    raw = f"{time.isoformat()} {id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, id_type: Callable[[str], Id], *, field: str) -> Position[Id]:
    """The position a cursor of :func:`encode` names, its id made by ``id_type``; anything
    else is a 422 on ``field``, before any database sees it: a time without an offset or
    outside the years 1 to 9999 in UTC, an id ``id_type`` refuses or holding a NUL character
    (PostgreSQL refuses one even to compare)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        time, id = raw.split(" ")
        if has_nul(id):
            raise ValueError("NUL character")
        moment = datetime.fromisoformat(time)
        if moment.tzinfo is None:
            raise ValueError("naive time")
        position = (moment.astimezone(UTC), id_type(id))
    # binascii.Error and UnicodeDecodeError are ValueErrors too; OverflowError: out of range
    except (ValueError, OverflowError):
        raise invalid_field(field, "not a cursor this list gave", "cursor") from None
    return position


def page(
    rows: Sequence[Row], limit: int, position: Callable[[Row], tuple[datetime, str | uuid.UUID]]
) -> tuple[Sequence[Row], str | None]:
    """A page of a listing that asked for ``limit + 1`` rows: the first ``limit``, and the
    cursor of the last of them (its ``position``), or None when no row follows."""
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode(*position(rows[limit - 1]))
