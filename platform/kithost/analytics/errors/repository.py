"""SQL for client error groups. Every statement takes the tenant."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.db import insert
from kithost.kit.cursors import Position
from kithost.models import ErrorGroup, ErrorGroupUser, ErrorStatus


@dataclass(frozen=True)
class Occurrences:
    """New occurrences of one client error group within a batch."""

    widget_id: uuid.UUID
    fingerprint: str
    kind: str
    message: str
    frame: str | None
    hint: str | None
    sample: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    count: int
    end_users: dict[str, datetime]
    """Each end user's latest occurrence in the batch."""


def end_user_hash(tenant_id: uuid.UUID, end_user_id: str) -> str:
    """What an error group keeps of an end user who met it: enough to count them apart, and
    to find them again from their id (an erasure), never the id itself. Unkeyed, so a key
    rotation neither counts anyone twice nor hides them from an erasure: an anonymous id is
    random (``anon_`` and at least 16 random characters), and an identified one is the
    tenant's own, which its raw events hold anyway."""
    text = f"error-group-user:{tenant_id}:{end_user_id}"
    return hashlib.sha256(text.encode()).hexdigest()


async def count_into(
    session: AsyncSession, tenant_id: uuid.UUID, found: Occurrences, now: datetime
) -> uuid.UUID | None:
    """Count ``found`` into its group when the widget has one (reopened when resolved
    before ``now``, when the occurrences arrived) and remember its end users; the group's
    id, or None when there is no such group (none is made: :func:`add_occurrences` makes
    one)."""
    group = ErrorGroup.__table__.c
    columns = ("count", "first_seen", "last_seen", "sample", "hint")
    new = SimpleNamespace(
        **{name: literal(getattr(found, name), group[name].type) for name in columns}
    )
    statement = (
        update(ErrorGroup)
        .where(
            group.tenant_id == tenant_id,
            group.widget_id == found.widget_id,
            group.fingerprint == found.fingerprint,
        )
        .values(_counted(new, now))
        .returning(group.id)
    )
    group_id: uuid.UUID | None = (await session.execute(statement)).scalar_one_or_none()
    if group_id is not None:
        await _remember_end_users(session, tenant_id, group_id, found)
    return group_id


async def add_occurrences(
    session: AsyncSession, tenant_id: uuid.UUID, found: Occurrences, now: datetime
) -> uuid.UUID | None:
    """Count ``found`` into its group (created if new; reopened when resolved before
    ``now``, when the occurrences arrived) and remember its end users with their latest
    occurrence; the group's id when it is new."""
    group = ErrorGroup.__table__.c
    new_id = uuid.uuid4()
    statement = insert(session, ErrorGroup).values(
        id=new_id,
        created_at=now,
        updated_at=now,
        tenant_id=tenant_id,
        widget_id=found.widget_id,
        fingerprint=found.fingerprint,
        kind=found.kind,
        message=found.message,
        frame=found.frame,
        hint=found.hint,
        sample=found.sample,
        first_seen=found.first_seen,
        last_seen=found.last_seen,
        count=found.count,
        status=ErrorStatus.open,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[group.tenant_id, group.widget_id, group.fingerprint],
        set_=_counted(statement.excluded, now),
    ).returning(group.id)
    group_id = (await session.execute(statement)).scalar_one()
    await _remember_end_users(session, tenant_id, group_id, found)
    return group_id if group_id == new_id else None


def _counted(new: Any, now: datetime) -> dict[str, Any]:
    """What counting new occurrences (``new``: their count, first and last seen, sample and
    hint, as columns of a row or values) into a group sets."""
    group = ErrorGroup.__table__.c
    # Reopened by what arrives after the resolution, not by the visitor's clock: a device
    # minutes slow meets the error again after the fix and dates it before.
    reopened = and_(group.status == ErrorStatus.resolved, group.resolved_at < now)
    newer = new.last_seen >= group.last_seen
    return {
        "count": group.count + new.count,
        "first_seen": case(
            (new.first_seen < group.first_seen, new.first_seen), else_=group.first_seen
        ),
        "last_seen": case((newer, new.last_seen), else_=group.last_seen),
        "sample": case((newer, new.sample), else_=group.sample),
        "hint": case((newer, new.hint), else_=group.hint),
        "status": case((reopened, ErrorStatus.open.value), else_=group.status),
        "resolved_at": case((reopened, None), else_=group.resolved_at),
        "updated_at": now,
    }


async def _remember_end_users(
    session: AsyncSession, tenant_id: uuid.UUID, group_id: uuid.UUID, found: Occurrences
) -> None:
    """Remember the end users who met the group in ``found``, with their latest occurrence."""
    if not found.end_users:
        return
    users = insert(session, ErrorGroupUser)
    met = users.excluded.last_seen
    users = users.on_conflict_do_update(
        index_elements=[ErrorGroupUser.group_id, ErrorGroupUser.end_user_hash],
        set_={
            "last_seen": case((met > ErrorGroupUser.last_seen, met), else_=ErrorGroupUser.last_seen)
        },
    )
    await session.execute(
        users,
        [
            {
                "group_id": group_id,
                "end_user_hash": end_user_hash(tenant_id, user),
                "tenant_id": tenant_id,
                "last_seen": last_seen,
            }
            for user, last_seen in sorted(found.end_users.items())
        ],
    )


async def has_group(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID, fingerprint: str
) -> bool:
    query = select(ErrorGroup.id).where(
        ErrorGroup.tenant_id == tenant_id,
        ErrorGroup.widget_id == widget_id,
        ErrorGroup.fingerprint == fingerprint,
    )
    return (await session.scalar(query)) is not None


async def groups_made_since(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID, since: datetime
) -> int:
    """How many of the widget's groups were made at or after ``since``."""
    query = select(func.count()).where(
        ErrorGroup.tenant_id == tenant_id,
        ErrorGroup.widget_id == widget_id,
        ErrorGroup.created_at >= since,
    )
    return (await session.scalar(query)) or 0


def _affected() -> Any:
    return (
        select(func.count())
        .where(ErrorGroupUser.group_id == ErrorGroup.id)
        .correlate(ErrorGroup)
        .scalar_subquery()
        .label("affected_end_users")
    )


async def list_error_groups(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    status: ErrorStatus | None,
    widget_id: uuid.UUID | None,
    before: Position[uuid.UUID] | None,
    limit: int,
) -> Sequence[tuple[ErrorGroup, int]]:
    """The tenant's groups, latest occurrence first, from the one after ``before``."""
    g = ErrorGroup
    query: Select[Any] = (
        select(g, _affected())
        .where(g.tenant_id == tenant_id)
        .order_by(g.last_seen.desc(), g.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(g.status == status)
    if widget_id is not None:
        query = query.where(g.widget_id == widget_id)
    if before is not None:
        query = query.where(tuple_(g.last_seen, g.id) < tuple_(*before))
    return [(group, affected) for group, affected in await session.execute(query)]


async def get_error_group(
    session: AsyncSession, tenant_id: uuid.UUID, group_id: uuid.UUID
) -> tuple[ErrorGroup, int] | None:
    query = select(ErrorGroup, _affected()).where(
        ErrorGroup.tenant_id == tenant_id, ErrorGroup.id == group_id
    )
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])
