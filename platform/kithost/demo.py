"""The demo tenant, owner and widget that ``make run`` seeds on a new database."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth import repository as auth_repository
from kithost.auth.passwords import generate_password, hash_password
from kithost.auth.principals import CLI
from kithost.errors import InvalidInput, NotFound
from kithost.models import Tenant
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.tenants.service import create_tenant
from kithost.users import repository as users_repository
from kithost.users.service import get_or_create_user
from kithost.widgets import repository as widgets_repository
from kithost.widgets.service import allow_origin, create_widget, publish_draft

DEMO_SLUG = "demo"
DEMO_OWNER = "owner@demo.kithost.test"
DEMO_WIDGET = "Demo widget"
NO_SESSION = uuid.UUID(int=0)
"""No dashboard session's id: a new password keeps none of the owner's."""


@dataclass(frozen=True)
class DemoSeed:
    tenant: str
    owner_email: str
    owner_password: str | None
    widget_public_key: str | None
    created: bool


async def seed_demo(
    session: AsyncSession, settings: Settings, *, new_password: bool = False
) -> DemoSeed:
    """Create the demo data unless it exists; the owner's password is returned only when
    this call created the owner, or, with ``new_password``, gave the owner a new one (the
    first run's password is shown once: this is the way back in)."""
    tenant = await auth_repository.tenant_by_slug(session, DEMO_SLUG)
    if tenant is not None:
        await _allow_this_run(session, settings, tenant)
        password = await _new_owner_password(session) if new_password else None
        return DemoSeed(DEMO_SLUG, DEMO_OWNER, password, None, created=False)
    owner = await get_or_create_user(session, CLI, DEMO_OWNER)
    tenant = await create_tenant(
        session, CLI, slug=DEMO_SLUG, name="Demo Company", owner=owner.user
    )
    widget = await create_widget(
        session,
        CLI,
        tenant,
        name=DEMO_WIDGET,
        origins=_origins(settings),
        allow_insecure_origins=not settings.https,
    )
    await publish_draft(session, CLI, widget, published_by=None)
    password = owner.password
    if password is None and new_password:
        password = await _new_owner_password(session)
    return DemoSeed(DEMO_SLUG, DEMO_OWNER, password, widget.public_key, created=True)


def _origins(settings: Settings) -> list[str]:
    """The origins the demo page is served from on this run."""
    return [settings.base_url, f"http://127.0.0.1:{settings.port}"]


async def _allow_this_run(session: AsyncSession, settings: Settings, tenant: Tenant) -> None:
    """Allow this run's origins on the demo widget when an earlier run (on another port,
    say) did not: the demo page answers on any of them. A widget renamed, deleted or made
    to refuse insecure origins in the dashboard is left as it is."""
    widget = await widgets_repository.widget_named(session, tenant.id, DEMO_WIDGET)
    if widget is None:
        return
    for origin in _origins(settings):
        with contextlib.suppress(InvalidInput):  # http:// on a widget that refuses it
            await allow_origin(session, CLI, widget, origin, domain_key=None)


async def _new_owner_password(session: AsyncSession) -> str:
    """Give the demo owner a new generated password and end their dashboard sessions
    (audited as a password change, by the command line)."""
    owner = await users_repository.get_by_email(session, DEMO_OWNER)
    if owner is None:
        raise NotFound(f"There is no user {DEMO_OWNER}.", code="user_not_found")
    password = generate_password()
    owner.password_hash = await asyncio.to_thread(hash_password, password)
    await users_repository.revoke_other_dashboard_sessions(session, owner.id, NO_SESSION, utcnow())
    audit.record(session, CLI, "user.password_changed", target_type="user", target_id=owner.id)
    return password
