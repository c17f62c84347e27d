from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from kithost.auth.principals import Actor
from kithost.auth.scopes import Scope
from kithost.kit.schemas import Name, Schema
from kithost.models import ApiClient


class ClientMaker(Schema):
    """Who made a client, named as the audit log names actors."""

    type: str = Field(examples=["user", "client", "cli"])
    id: str | None = Field(
        description="The user's id, the API client's `client_id`; null for the CLI."
    )


class Client(Schema):
    """An OAuth 2.0 client of the tenant's backend (its secret is never shown again). It
    belongs to the tenant, not to whoever made it: it keeps its scopes when they are
    removed, given a lower role or revoked (revoke it, or make another and revoke this one,
    to end what its secret opens)."""

    id: uuid.UUID
    client_id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    created_by: ClientMaker | None = Field(
        description="Who made it, from the audit log (null only where the log has no record)."
    )
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, client: ApiClient, maker: Actor | None) -> Client:
        return cls(
            id=client.id,
            client_id=client.client_id,
            name=client.name,
            scopes=[Scope(s) for s in client.scopes],
            created_at=client.created_at,
            created_by=None if maker is None else ClientMaker(type=maker.type, id=maker.id),
            last_used_at=client.last_used_at,
            revoked_at=client.revoked_at,
        )


class ClientCreate(Schema):
    name: Name
    scopes: list[Scope] = Field(min_length=1)


class ClientCreated(Schema):
    """A new client and its secret: shown this once, Kithost keeps only a hash."""

    client: Client
    client_secret: str = Field(validation_alias="secret")
