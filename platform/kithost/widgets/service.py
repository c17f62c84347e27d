from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.errors import invalid_field
from kithost.kit.origins import normalize_origin
from kithost.kit.tokens import random_token
from kithost.models import AllowedOrigin, Tenant, Widget


async def create_widget(
    session: AsyncSession,
    actor: audit.Actor,
    tenant: Tenant,
    *,
    name: str,
    origins: Iterable[str] = (),
) -> Widget:
    """Create a widget with a fresh public key (``pk_`` + 192 random bits)."""
    try:
        normalized = sorted({normalize_origin(o) for o in origins})
    except ValueError as exc:
        raise invalid_field("origins", str(exc), "origin") from exc
    widget = Widget(tenant_id=tenant.id, name=name, public_key=random_token("pk_"))
    session.add(widget)
    await session.flush()
    session.add_all(
        AllowedOrigin(tenant_id=tenant.id, widget_id=widget.id, origin=o) for o in normalized
    )
    audit.record(
        session,
        actor,
        "widget.created",
        tenant_id=tenant.id,
        target_type="widget",
        target_id=widget.id,
    )
    return widget
