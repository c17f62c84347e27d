"""Client error groups in domain terms: new ``client.error`` events counted into their
groups (a new group announced by the ``client_error.new_group`` webhook, at most
:data:`NEW_GROUPS_PER_HOUR` a widget's hour), and the tenant's list, detail and
resolution."""

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
from kithost.db import lock_key
from kithost.errors import NotFound
from kithost.kit import cursors
from kithost.models import ErrorGroup, ErrorStatus, Tenant
from kithost.models.base import utcnow
from kithost.webhooks import service as webhooks
from kithost.widgets.service import get_widget

NEW_GROUPS_PER_HOUR = 100
"""New error groups a widget gets in a clock hour (UTC, of their counting), and so at most
as many ``client_error.new_group`` webhooks: any page the widget allows may send errors,
each batch 50 unlike one another. The distinct errors beyond it that hour are counted into
the widget's overflow group of the hour (:data:`OVERFLOW_KIND`), which no webhook
announces; errors already grouped go on counting into their groups."""

OVERFLOW_KIND = "overflow"
"""The kind of a widget's overflow group of an hour (see :data:`NEW_GROUPS_PER_HOUR`)."""
OVERFLOW_MESSAGE = "Too many distinct errors: new ones beyond {cap} in this hour are counted here"
OVERFLOW_HINT = (
    "More new kinds of error came in this hour than Kithost groups apart; the sample is the "
    "latest. Many at once, each unlike the others, usually mean a page reporting made-up "
    "errors."
)


async def count_occurrences(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    new: Sequence[Event],
    now: datetime,
) -> None:
    """Count the ``client.error`` events among ``new`` (events stored just now) into their
    groups; those of no group yet into new ones while the widget's hour has room
    (:data:`NEW_GROUPS_PER_HOUR`), else into its overflow group of the hour."""
    ungrouped = [
        found
        # In one order everywhere: batches at once lock their groups' rows without a wait
        # in a circle.
        for found in sorted(_occurrences(widget_id, new), key=lambda found: found.fingerprint)
        if await repository.count_into(session, tenant_id, found, now) is None
    ]
    if ungrouped:
        await _new_groups(session, tenant_id, widget_id, ungrouped, now)


async def _new_groups(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    widget_id: uuid.UUID,
    ungrouped: Sequence[repository.Occurrences],
    now: datetime,
) -> None:
    """Make groups of ``ungrouped`` (each announced) within the room the widget's hour has
    left, and count the rest into its overflow group. Counted, then written: batches of the
    widget take turns (their ingest tasks run at once on several workers)."""
    await lock_key(session, f"kithost.analytics.error_groups:{tenant_id}:{widget_id}")
    hour = now.replace(minute=0, second=0, microsecond=0)
    overflow = f"{OVERFLOW_KIND}:{hour:%Y-%m-%dT%H}"
    if await repository.has_group(session, tenant_id, widget_id, overflow):
        room = 0  # made only once the hour is full
    else:
        made = await repository.groups_made_since(session, tenant_id, widget_id, hour)
        room = max(0, NEW_GROUPS_PER_HOUR - made)
    announced: list[tuple[str, dict[str, Any]]] = []
    for found in ungrouped[:room]:
        group_id = await repository.add_occurrences(session, tenant_id, found, now)
        if group_id is not None:
            announced.append(("client_error.new_group", _group(group_id, found)))
    if ungrouped[room:]:
        folded = _folded(overflow, ungrouped[room:])
        await repository.add_occurrences(session, tenant_id, folded, now)
    if announced:
        await webhooks.emit_all(session, tenant_id, announced)


def _folded(
    fingerprint: str, ungrouped: Sequence[repository.Occurrences]
) -> repository.Occurrences:
    """``ungrouped``'s occurrences as those of the overflow group ``fingerprint``."""
    latest = max(ungrouped, key=lambda found: found.last_seen)
    end_users: dict[str, datetime] = {}
    for found in ungrouped:
        for end_user, seen in found.end_users.items():
            end_users[end_user] = max(seen, end_users.get(end_user, seen))
    return repository.Occurrences(
        widget_id=latest.widget_id,
        fingerprint=fingerprint,
        kind=OVERFLOW_KIND,
        message=OVERFLOW_MESSAGE.format(cap=NEW_GROUPS_PER_HOUR),
        frame=None,
        hint=OVERFLOW_HINT,
        sample=latest.sample,
        first_seen=min(found.first_seen for found in ungrouped),
        last_seen=latest.last_seen,
        count=sum(found.count for found in ungrouped),
        end_users=end_users,
    )


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
