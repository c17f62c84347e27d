from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr

from kithost import models
from kithost.auth.principals import Actor
from kithost.invitations.service import NewInvitation
from kithost.kit.schemas import Schema, refuse_invisible
from kithost.models import Role


class Inviter(Schema):
    """Who made an invitation, named as the audit log names actors."""

    type: str = Field(examples=["user", "client", "cli"])
    id: str | None = Field(
        description="The user's id, the API client's `client_id`; null for the CLI."
    )


class Invitation(Schema):
    """A pending invitation (its token is never shown again)."""

    id: uuid.UUID
    email: str
    role: Role
    invited_by_id: uuid.UUID | None = Field(
        description="The inviting user's id while the account exists; null when an API "
        "client or the CLI invited (`invited_by` names each)."
    )
    invited_by: Inviter | None = Field(
        description="Who made it, from the audit log (null only where the log has no record)."
    )
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, invitation: models.Invitation, inviter: Actor | None) -> Invitation:
        return cls(
            id=invitation.id,
            email=invitation.email,
            role=invitation.role,
            invited_by_id=invitation.invited_by_id,
            invited_by=None if inviter is None else Inviter(type=inviter.type, id=inviter.id),
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
        )


class InvitationCreate(Schema):
    email: str = Field(max_length=320)
    role: Role


class InvitationCreated(Schema):
    """A new invitation and the link that accepts it: shown this once."""

    invitation: Invitation
    accept_url: str

    @classmethod
    def of(cls, new: NewInvitation) -> InvitationCreated:
        return cls(invitation=Invitation.of(new.invitation, new.inviter), accept_url=new.accept_url)


class InvitationAccept(Schema):
    """The token of the link. Without a dashboard session, and only when no account has
    the invited email yet, ``password`` (and ``name``) create that account."""

    token: str = Field(min_length=1, max_length=200)
    password: SecretStr | None = None
    name: Annotated[str, Field(max_length=200), AfterValidator(refuse_invisible)] = ""
