"""Builders for test data and credentials, through the real services."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import cookies
from kithost.auth.oauth import issue_access_token
from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.clients.service import create_client
from kithost.models import Membership, Role, Tenant, User, Widget
from kithost.tenants.service import create_tenant
from kithost.users.service import create_user
from kithost.widgets.config import WidgetConfig

PASSWORD = "correct horse battery staple"

ROTATING_CLIENTS = pytest.mark.parametrize(
    ("first", "address"),
    [
        ("2001:db8:7:1::1", "2001:db8:7:1:{:x}::1"),  # one /64, a new address each time
        ("203.0.113.7", "::ffff:203.0.113.7"),  # the same IPv4 client, spelled as IPv6
    ],
)
"""A test of a per-client limit, given one client's ``first`` address and the addresses
(``address.format(n)``, n from 1) it rotates through: ``kit.ratelimit.client_key``."""


async def make_user(db: AsyncSession, *, platform_admin: bool = False) -> User:
    email = f"user-{secrets.token_hex(4)}@example.test"
    new = await create_user(db, CLI, email, password=PASSWORD, is_platform_admin=platform_admin)
    return new.user


async def make_tenant(db: AsyncSession, slug: str | None = None) -> Tenant:
    owner = await make_user(db)
    slug = slug or f"t-{secrets.token_hex(4)}"
    return await create_tenant(db, CLI, slug=slug, name=slug.title(), owner=owner)


async def bare_tenant(db: AsyncSession, prefix: str = "bare") -> Tenant:
    """A tenant without an owner: for data that is committed, so that deleting the tenant
    removes everything the test made (an owner would outlive it, with its audit entry)."""
    tenant = Tenant(slug=f"{prefix}-{secrets.token_hex(4)}", name=prefix.title())
    db.add(tenant)
    await db.flush()
    return tenant


async def make_member(db: AsyncSession, tenant: Tenant, role: Role) -> User:
    user = await make_user(db)
    db.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role))
    await db.flush()
    return user


@dataclass(frozen=True)
class Credentials:
    """The headers an HTTP call needs to act as someone (``Cookie`` + CSRF, or Bearer)."""

    headers: dict[str, str]


async def login(app: FastAPI, db: AsyncSession, user: User) -> Credentials:
    """A sign-in cookie for ``user`` (cookie + CSRF header), as the login endpoint gives."""
    signed_in = await cookies.sign_in(
        db, app.state.settings, user, replacing=None, ip=None, user_agent="test"
    )
    return Credentials(
        {
            "Cookie": f"{cookies.SIGN_IN_COOKIE}={signed_in.value}",
            cookies.CSRF_HEADER: signed_in.csrf_token,
        }
    )


async def client_token(
    app: FastAPI, db: AsyncSession, tenant: Tenant, scopes: list[Scope]
) -> Credentials:
    """An API client of ``tenant`` with ``scopes`` and a Bearer access token for all of them."""
    new = await create_client(db, CLI, tenant, name="test", scopes=scopes)
    token = await issue_access_token(
        db, app.state.settings, app.state.secret_box, new.client, scopes
    )
    return Credentials({"Authorization": f"Bearer {token}"})


def set_draft(widget: Widget, config: dict[str, Any]) -> None:
    """Give ``widget`` the draft ``config`` as stored, past the service's checks: for hosted
    widgets, which only exist from before OpenAI's Agent Builder shutdown (2026-11-30)."""
    widget.draft = WidgetConfig.model_validate(config).model_dump(mode="json")
