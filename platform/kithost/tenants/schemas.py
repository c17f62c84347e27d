from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from kithost.invitations.schemas import InvitationCreated
from kithost.kit.schemas import Name, Schema
from kithost.models import Role


class Tenant(Schema):
    id: uuid.UUID
    slug: str
    name: str
    created_at: datetime


class TenantCreate(Schema):
    slug: str = Field(max_length=63, examples=["acme"])
    name: Name
    owner_email: str = Field(max_length=320)


class TenantCreated(Schema):
    """A new tenant. When its owner has no account yet, ``owner_invitation`` holds the link
    that creates it, shown this once."""

    tenant: Tenant
    owner_invitation: InvitationCreated | None


class TenantUpdate(Schema):
    name: Name


class TenantMembership(Schema):
    """A user's role in a tenant."""

    tenant: Tenant
    role: Role
