"""Published widgets to ask the config endpoint about, and what its refusals look like."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit.service import CLI
from kithost.kit.origins import normalize_pattern
from kithost.models import AllowedOrigin, Widget
from kithost.widgets.config import WidgetConfig
from kithost.widgets.service import create_widget, publish_draft
from tests.factories import make_tenant

ORIGIN = "https://shop.example.com"


async def make_widget(
    db: AsyncSession,
    origins: Sequence[str | tuple[str, str | None]] = (ORIGIN,),
    config: WidgetConfig | None = None,
) -> Widget:
    """A widget allowing ``origins`` (patterns, or pattern and domain key pairs), with
    ``config`` published as version 1 unless it is None."""
    tenant = await make_tenant(db)
    widget = await create_widget(db, CLI, tenant, name="Support")
    for entry in origins:
        pattern, domain_key = (entry, None) if isinstance(entry, str) else entry
        db.add(
            AllowedOrigin(
                tenant_id=tenant.id,
                widget_id=widget.id,
                origin=normalize_pattern(pattern),
                domain_key=domain_key,
            )
        )
    await db.flush()
    if config is not None:
        await publish(db, widget, config)
    return widget


async def publish(db: AsyncSession, widget: Widget, config: WidgetConfig) -> int:
    """Publish ``config`` as the widget's next version, as the publish route does."""
    widget.draft = config.model_dump(mode="json")
    await publish_draft(db, CLI, widget, published_by=None)
    await db.flush()
    assert widget.published_version is not None
    return widget.published_version


def config_url(widget: Widget | str) -> str:
    public_key = widget if isinstance(widget, str) else widget.public_key
    return f"/v1/embed/{public_key}/config"


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    """A problem document without CORS headers that no cache may keep."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"] == "Origin"
