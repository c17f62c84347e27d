from __future__ import annotations

import uuid

from pydantic import Field

from kithost.auth.passwords import MAX_LENGTH
from kithost.auth.scopes import Scope
from kithost.kit.schemas import Schema
from kithost.models import Role


class Login(Schema):
    email: str = Field(max_length=320)
    password: str = Field(max_length=MAX_LENGTH)


class PasswordChange(Schema):
    current_password: str = Field(max_length=MAX_LENGTH)
    new_password: str


class TenantRole(Schema):
    """A tenant the user belongs to, their role there, and what it lets them do."""

    slug: str
    name: str
    role: Role
    scopes: list[Scope]
    """The role's scopes (every scope for a platform admin): the dashboard disables the
    controls of the others."""


class SignedInUser(Schema):
    id: uuid.UUID
    email: str
    name: str
    is_platform_admin: bool
    memberships: list[TenantRole]


class SignedIn(Schema):
    """The signed-in user, and the token to send as ``X-CSRF-Token`` on every write."""

    user: SignedInUser
    csrf_token: str
    visitor_url: str
    """Where visitors' pages load Kithost from (``KITHOST_VISITOR_URL``, else
    ``KITHOST_PUBLIC_URL``): the host the install snippets name."""


class SignInStatus(Schema):
    """Who is signed in to the dashboard: what ``/auth/me`` answers, or null for nobody."""

    signed_in: SignedIn | None


class SignInMethods(Schema):
    """How users may sign in: always a password; single sign-on when it is configured."""

    password: bool = True
    oidc: bool
