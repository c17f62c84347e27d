from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr

from kithost.kit.schemas import Schema, refuse_invisible
from kithost.models import Role


class Invitation(Schema):
    """A pending invitation (its token is never shown again)."""

    id: uuid.UUID
    email: str
    role: Role
    invited_by_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime


class InvitationCreate(Schema):
    email: str = Field(max_length=320)
    role: Role


class InvitationCreated(Schema):
    """A new invitation and the link that accepts it: shown this once."""

    invitation: Invitation
    accept_url: str


class InvitationAccept(Schema):
    """The token of the link. Without a dashboard session, and only when no account has
    the invited email yet, ``password`` (and ``name``) create that account."""

    token: str = Field(min_length=1, max_length=200)
    password: SecretStr | None = None
    name: Annotated[str, Field(max_length=200), AfterValidator(refuse_invisible)] = ""
