from __future__ import annotations

from pydantic import Field

from kithost.invitations.schemas import InvitationCreated
from kithost.kit.schemas import Name, Schema
from kithost.members.schemas import Tenant


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
