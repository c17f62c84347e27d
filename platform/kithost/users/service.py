from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth.passwords import generate_password, hash_password
from kithost.errors import Conflict, invalid_field
from kithost.models import User
from kithost.users import repository


@dataclass(frozen=True)
class NewUser:
    """A user just created, with the password to show once when it was generated."""

    user: User
    password: str | None


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 320 or any(c.isspace() for c in email):
        raise invalid_field("email", "not a valid email address", "email")
    return email


async def create_user(
    session: AsyncSession,
    actor: audit.Actor,
    email: str,
    *,
    name: str = "",
    password: str | None = None,
    is_platform_admin: bool = False,
) -> NewUser:
    """Create a user; without ``password`` one is generated and returned once."""
    email = normalize_email(email)
    if await repository.get_by_email(session, email) is not None:
        raise Conflict(f"A user with email {email} exists.", code="user_exists")
    generated = None if password is not None else generate_password()
    user = User(
        email=email,
        name=name,
        password_hash=hash_password(password if password is not None else generated or ""),
        is_platform_admin=is_platform_admin,
    )
    session.add(user)
    await session.flush()
    audit.record(session, actor, "user.created", target_type="user", target_id=user.id)
    return NewUser(user, generated)


async def get_or_create_user(session: AsyncSession, actor: audit.Actor, email: str) -> NewUser:
    existing = await repository.get_by_email(session, normalize_email(email))
    if existing is not None:
        return NewUser(existing, None)
    return await create_user(session, actor, email)
