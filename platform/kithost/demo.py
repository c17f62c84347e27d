"""The demo tenant, owner and widget that ``make run`` seeds on a new database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import repository as auth_repository
from kithost.auth.principals import CLI
from kithost.settings import Settings
from kithost.tenants.service import create_tenant
from kithost.users.service import get_or_create_user
from kithost.widgets.service import create_widget, publish_draft

DEMO_SLUG = "demo"
DEMO_OWNER = "owner@demo.kithost.test"


@dataclass(frozen=True)
class DemoSeed:
    tenant: str
    owner_email: str
    owner_password: str | None
    widget_public_key: str | None
    created: bool


async def seed_demo(session: AsyncSession, settings: Settings) -> DemoSeed:
    """Create the demo data unless it exists; the owner's password is returned only when
    this call created the owner."""
    if await auth_repository.tenant_by_slug(session, DEMO_SLUG) is not None:
        return DemoSeed(DEMO_SLUG, DEMO_OWNER, None, None, created=False)
    owner = await get_or_create_user(session, CLI, DEMO_OWNER)
    tenant = await create_tenant(
        session, CLI, slug=DEMO_SLUG, name="Demo Company", owner=owner.user
    )
    widget = await create_widget(
        session,
        CLI,
        tenant,
        name="Demo widget",
        origins=[settings.base_url, f"http://127.0.0.1:{settings.port}"],
        allow_insecure_origins=not settings.https,
    )
    await publish_draft(session, CLI, widget, published_by=None)
    return DemoSeed(DEMO_SLUG, DEMO_OWNER, owner.password, widget.public_key, created=True)
