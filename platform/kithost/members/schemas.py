from __future__ import annotations

import uuid
from datetime import datetime

from kithost.kit.schemas import Schema
from kithost.models import Role


class Member(Schema):
    """A user's membership of the tenant."""

    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime


class MemberUpdate(Schema):
    role: Role


# A tenant's own schema, here because invitations (below tenants) answer with it too.
class Tenant(Schema):
    id: uuid.UUID
    slug: str
    name: str
    created_at: datetime


class TenantMembership(Schema):
    """A user's role in a tenant."""

    tenant: Tenant
    role: Role
