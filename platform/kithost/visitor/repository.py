"""The queries behind the public config: by public key, across tenants (a visitor has no
tenant; the key itself is the widget's public, globally unique name)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import AllowedOrigin, Tenant, Widget, WidgetVersion


class WidgetRow(NamedTuple):
    id: uuid.UUID
    tenant_id: uuid.UUID
    revision: int
    published_version: int | None
    config: dict[str, Any] | None
    """The published version's config; None while nothing is published."""
    tenant_openai_key: str | None
    """The tenant's OpenAI API key, encrypted (hosted widgets call OpenAI with it)."""
    widget_model_key: str | None
    """The widget's own model key, encrypted (for its agent's ``base_url``)."""
    widget_model_key_base_url: str | None
    """The endpoint that key was set for (None: the operator's)."""
    widget_tool_secret: str | None
    """The secret signing its ``http`` tools' calls, encrypted."""


async def revision(session: AsyncSession, public_key: str) -> int | None:
    """The widget's revision (None: no such widget): the cheap check that a cache is current."""
    result = await session.execute(select(Widget.revision).where(Widget.public_key == public_key))
    return result.scalar_one_or_none()


async def widget_with_published_config(session: AsyncSession, public_key: str) -> WidgetRow | None:
    """The widget with its published version's config and its tenant's encrypted OpenAI
    key, in one statement."""
    published = and_(
        WidgetVersion.widget_id == Widget.id,
        WidgetVersion.tenant_id == Widget.tenant_id,
        WidgetVersion.number == Widget.published_version,
    )
    query = (
        select(
            Widget.id,
            Widget.tenant_id,
            Widget.revision,
            Widget.published_version,
            WidgetVersion.config,
            Tenant.openai_api_key,
            Widget.model_key,
            Widget.model_key_base_url,
            Widget.tool_secret,
        )
        .join(Tenant, Tenant.id == Widget.tenant_id)
        .outerjoin(WidgetVersion, published)
        .where(Widget.public_key == public_key)
    )
    row = (await session.execute(query)).one_or_none()
    return None if row is None else WidgetRow(*row)


class DraftRow(NamedTuple):
    draft: dict[str, Any]
    published_version: int | None
    tenant_openai_key: str | None
    widget_model_key: str | None
    widget_model_key_base_url: str | None
    widget_tool_secret: str | None


async def widget_draft(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID
) -> DraftRow | None:
    """The widget's draft with the keys it runs with (for a preview of it)."""
    query = (
        select(
            Widget.draft,
            Widget.published_version,
            Tenant.openai_api_key,
            Widget.model_key,
            Widget.model_key_base_url,
            Widget.tool_secret,
        )
        .join(Tenant, Tenant.id == Widget.tenant_id)
        .where(Widget.tenant_id == tenant_id, Widget.id == widget_id)
    )
    row = (await session.execute(query)).one_or_none()
    return None if row is None else DraftRow(*row)


async def allowed_origins(
    session: AsyncSession, tenant_id: uuid.UUID, widget_id: uuid.UUID
) -> Sequence[tuple[str, str | None]]:
    """The widget's allowed-origin patterns with their domain keys."""
    result = await session.execute(
        select(AllowedOrigin.origin, AllowedOrigin.domain_key).where(
            AllowedOrigin.tenant_id == tenant_id, AllowedOrigin.widget_id == widget_id
        )
    )
    return [(origin, domain_key) for origin, domain_key in result]
