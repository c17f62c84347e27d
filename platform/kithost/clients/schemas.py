from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from kithost.auth.scopes import Scope
from kithost.kit.schemas import Name, Schema


class Client(Schema):
    """An OAuth 2.0 client of the tenant's backend (its secret is never shown again)."""

    id: uuid.UUID
    client_id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ClientCreate(Schema):
    name: Name
    scopes: list[Scope] = Field(min_length=1)


class ClientCreated(Schema):
    """A new client and its secret: shown this once, Kithost keeps only a hash."""

    client: Client
    client_secret: str = Field(validation_alias="secret")
