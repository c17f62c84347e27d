"""Client error groups in domain terms: new ``client.error`` events counted into their
groups (a new group announced by the ``client_error.new_group`` webhook), and the tenant's
list, detail and resolution."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics import events as contract
from kithost.analytics.errors import repository
from kithost.analytics.events import Event
from kithost.audit import service as audit
from kithost.auth.principals import Actor
from kithost.errors import NotFound
from kithost.kit import cursors
from kithost.models import ErrorGroup, ErrorStatus, Tenant
from kithost.models.base import utcnow
from kithost.webhooks import service as webhooks
from kithost.widgets.service import get_widget


async def count_occurrences(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    new: Sequence[Event],
    now: datetime,
) -> None:
    """Count the ``client.error`` events among ``new`` (events stored just now) into their
    groups."""
    for found in _occurrences(widget_id, new):
        group_id = await repository.add_occurrences(session, tenant_id, found, now)
        if group_id is not None:
            data = _group(group_id, found)
            await webhooks.emit(session, tenant_id, "client_error.new_group", data)


def _group(group_id: uuid.UUID, found: repository.Occurrences) -> dict[str, Any]:
    """A new error group as ``client_error.new_group`` announces it (no end user)."""
    return {
        "group_id": str(group_id),
        "widget_id": str(found.widget_id),
        "kind": found.kind,
        "message": found.message,
        "frame": found.frame,
        "hint": found.hint,
        "first_seen": found.first_seen.isoformat(),
        "count": found.count,
    }


def _occurrences(widget_id: uuid.UUID, new: Sequence[Event]) -> list[repository.Occurrences]:
    """``new``'s client errors by group. A sample names its end user only when identified
    (``u:…``, the tenant's own id): an anonymous one's device id is a credential (it mints
    sessions) and is left out; erasing an end user finds their samples by ``event_id``."""
    groups: dict[str, repository.Occurrences] = {}
    for event in sorted((e for e in new if e.name == "client.error"), key=lambda e: e.occurred_at):
        data = event.data
        key = contract.fingerprint(data["kind"], data["message"], data.get("frame"))
        found = groups.get(key)
        sample = {**data, "event_id": event.id}
        if event.end_user is not None and event.end_user.startswith("u:"):
            sample["end_user"] = event.end_user
        if found is None:
            found = groups[key] = repository.Occurrences(
                widget_id=widget_id,
                fingerprint=key,
                kind=data["kind"],
                message=contract.normalise_message(data["message"]),
                frame=data.get("frame"),
                hint=data.get("hint"),
                sample=sample,
                first_seen=event.occurred_at,
                last_seen=event.occurred_at,
                count=0,
                end_users={},
            )
        groups[key] = found = replace(
            found,
            count=found.count + 1,
            last_seen=event.occurred_at,
            sample=sample,
            hint=data.get("hint"),
        )
        if event.end_user is not None:
            found.end_users[event.end_user] = event.occurred_at
    return list(groups.values())


@dataclass(frozen=True)
class GroupView:
    group: ErrorGroup
    affected_end_users: int


@dataclass(frozen=True)
class GroupPage:
    groups: Sequence[GroupView]
    next_cursor: str | None


async def list_error_groups(
    session: AsyncSession,
    tenant: Tenant,
    *,
    status: ErrorStatus | None,
    widget_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> GroupPage:
    """The tenant's groups, latest occurrence first; a widget filter names one of the
    tenant's widgets (404 ``widget_not_found`` otherwise, as the reports answer)."""
    if widget_id is not None:
        await get_widget(session, tenant, widget_id)
    before = None if cursor is None else cursors.decode(cursor, uuid.UUID, field="cursor")
    rows = await repository.list_error_groups(
        session, tenant.id, status=status, widget_id=widget_id, before=before, limit=limit + 1
    )
    views = [GroupView(g, n) for g, n in rows]
    return GroupPage(*cursors.page(views, limit, lambda v: (v.group.last_seen, v.group.id)))


async def get_error_group(session: AsyncSession, tenant: Tenant, group_id: uuid.UUID) -> GroupView:
    found = await repository.get_error_group(session, tenant.id, group_id)
    if found is None:
        raise NotFound(f"No error group {group_id}.", code="error_group_not_found")
    return GroupView(*found)


async def resolve_error_group(
    session: AsyncSession, tenant: Tenant, actor: Actor, group_id: uuid.UUID
) -> GroupView:
    """Mark the group resolved; an occurrence after now reopens it."""
    view = await get_error_group(session, tenant, group_id)
    if view.group.status is not ErrorStatus.resolved:
        view.group.status = ErrorStatus.resolved
        view.group.resolved_at = utcnow()
        audit.record(
            session,
            actor,
            "error_group.resolved",
            tenant_id=tenant.id,
            target_type="error_group",
            target_id=group_id,
        )
        await session.flush()
    return view
