"""A widget's tool secret (it signs the calls of the agent's ``http`` tools), made with the
draft's first ``http`` tool, and the audit record of any change to a widget's secrets. Here,
below ``secrets`` (which rotates and reads them): saving a draft makes the tool secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from kithost.audit import service as audit
from kithost.auth.principals import TenantAccess
from kithost.errors import PreconditionFailed
from kithost.kit.crypto import SecretBox
from kithost.kit.outbound import origin_of
from kithost.kit.tokens import random_token
from kithost.models import Widget


def new_tool_secret() -> str:
    return random_token("kts_", 32)


async def ensure_tool_secret(
    session: AsyncSession, box: SecretBox, access: TenantAccess, widget: Widget
) -> str | None:
    """Give ``widget`` its tool secret when its draft has its first ``http`` tool: the new
    secret (to show this once), or None when there was one already or no such tool."""
    tools = widget.draft.get("agent", {}).get("tools", [])
    if widget.tool_secret is not None or not any(t.get("type") == "http" for t in tools):
        return None
    before = secrets_state(widget)
    secret = new_tool_secret()
    widget.tool_secret = box.encrypt(secret)
    await record_secret_change(session, access, widget, "widget.tool_secret_created", before)
    return secret


def secrets_state(widget: Widget) -> dict[str, Any]:
    """What the audit log records of a widget's secrets: whether each is set and, for the
    model key, the server it goes to (its origin; None: the operator's endpoint)."""
    endpoint = widget.model_key_base_url
    return {
        "has_identity_secret": widget.identity_secret is not None,
        "has_model_key": widget.model_key is not None,
        "model_key_endpoint": None if endpoint is None else origin_of(endpoint),
        "has_tool_secret": widget.tool_secret is not None,
        "revision": widget.revision,
    }


async def record_secret_change(
    session: AsyncSession,
    access: TenantAccess,
    widget: Widget,
    action: str,
    before: dict[str, Any],
) -> None:
    """Write the widget's changed secrets and record the change. The write bumps the
    widget's revision from the one read: another write of the widget that committed
    meanwhile (a double click) makes it 412 ``precondition_failed``, as a stale ``If-Match``
    is, and its change is not made."""
    try:
        await session.flush()
    except StaleDataError as exc:
        raise PreconditionFailed("The widget changed meanwhile; get it again.") from exc
    audit.record(
        session,
        access.actor,
        action,
        tenant_id=access.tenant.id,
        target_type="widget",
        target_id=widget.id,
        data=audit.changes(before, secrets_state(widget)),
    )
