from __future__ import annotations

import asyncio
import unicodedata
import uuid
from dataclasses import dataclass

from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth import cookies
from kithost.auth.passwords import (
    check_password_rules,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from kithost.auth.principals import SYSTEM, Actor, UserPrincipal
from kithost.errors import Conflict, Forbidden, RateLimited, Unauthorized, invalid_field
from kithost.kit.ratelimit import Decision, RateLimiter
from kithost.models import DashboardSession, User
from kithost.models.base import utcnow
from kithost.users import repository

FAILURE_WINDOW_SECONDS = 15 * 60
FAILURES_PER_ACCOUNT = 5
"""Wrong passwords for one account from one client address per window, before that
address gets 429 for the account (other addresses, the owner's, are not refused)."""
FAILURES_PER_IP = 20
"""Failed sign-ins from one client address per window, across accounts."""
FAILURES_PER_ACCOUNT_CEILING = 100
"""Wrong passwords for one account per window from all addresses; past it, only addresses
that have not failed for the account yet may still try (so the owner is not locked out)."""


@dataclass(frozen=True)
class NewUser:
    """A user just created, with the password to show once when it was generated."""

    user: User
    password: str | None


def normalize_email(email: str) -> str:
    """``email`` as an account is known by, so that one mailbox is one account and two
    mailboxes are never one: a valid address (email-validator: the syntax of RFC 5321/5322
    without quoted local parts or IP-literal domains, the length limits of addresses and
    DNS labels, checked on the folded form too; no DNS lookup, and ``.test`` allowed for
    demos and tests), else 422 on ``email``.

    Its local part is folded for caseless matching (:func:`_caseless`): spellings that
    differ in case or compatibility form only are one account (a Greek word ending in a
    capital, a final or a medial sigma; ``STRASSE``, ``straße`` and ``strasse``; U+0130
    ``İ`` and ``i`` with U+0307; a full-width U+FF56 and ``v``), as lower-casing did not
    do (the final and the medial sigma made two accounts, and ``ß`` one whose capitals,
    ``SS``, spelled another's). Its domain is what IDNA
    (UTS #46, as email-validator maps it) makes of it, never case-folded: ``BÜCHER`` and
    ``xn--bcher-kva`` are ``bücher``, but IDNA keeps ``faß`` and ``fass`` apart, two
    domains."""
    try:
        valid = _validated(unicodedata.normalize("NFKC", email.strip()))
        local = _caseless(valid.local_part)
        if local != valid.local_part:
            valid = _validated(f"{local}@{valid.domain}")
    except EmailNotValidError as exc:
        raise invalid_field("email", f"not a valid email address: {exc}", "email") from exc
    return valid.normalized


def _validated(email: str) -> ValidatedEmail:
    return validate_email(email, check_deliverability=False, test_environment=True)


def _caseless(text: str) -> str:
    """``text`` in the form Unicode's compatibility caseless matching compares (D146: full
    case folding between compatibility normalizations, here NFKC, repeated until nothing
    changes): lower-casing is no caseless match (the final and the medial sigma stay two),
    and folding alone may leave a string that normalizing changes again (U+0130 ``İ``
    folds to ``i`` and a combining dot), so the result is folded and normalized at once."""
    for _ in range(_FOLDS):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        if folded == text:
            break
        text = folded
    return text


_FOLDS = 4
"""Enough rounds of :func:`_caseless` for any text: one folds every code point to a form
the next leaves alone."""


class UserExists(Conflict):
    """409 ``user_exists``: an account has the email."""

    code = "user_exists"


async def create_user(
    session: AsyncSession,
    actor: Actor,
    email: str,
    *,
    name: str = "",
    password: str | None = None,
    is_platform_admin: bool = False,
) -> NewUser:
    """Create a user; without ``password`` one is generated and returned once. An account
    with the email already, or made by another request at the same moment, is 409
    ``user_exists`` (:class:`UserExists`)."""
    email = normalize_email(email)
    if password is not None:
        check_password_rules(password, email=email, field="password")
    if await repository.get_by_email(session, email) is not None:
        raise _exists(email)
    secret = password if password is not None else generate_password()
    user = User(
        email=email,
        name=name,
        password_hash=await asyncio.to_thread(hash_password, secret),
        is_platform_admin=is_platform_admin,
    )
    if not await _add_user(session, actor, user):
        raise _exists(email)
    return NewUser(user, None if password is not None else secret)


def _exists(email: str) -> UserExists:
    return UserExists(f"A user with email {email} exists.")


async def get_or_create_user(session: AsyncSession, actor: Actor, email: str) -> NewUser:
    """The user with ``email``; created (with a generated password) when there is none, not
    even one made by another request at the same moment."""
    existing = await repository.get_by_email(session, normalize_email(email))
    if existing is not None:
        return NewUser(existing, None)
    try:
        return await create_user(session, actor, email)
    except UserExists:
        return NewUser(await _made_meanwhile(session, normalize_email(email)), None)


async def _add_user(session: AsyncSession, actor: Actor, user: User) -> bool:
    """Insert ``user``; False, with nothing written, when another unit of work committed a
    user of its email first. Requests at once that create one account (invitations of two
    tenants accepted together, two first sign-ins) both find the email free; the unique
    email makes the second insert wait for the first and then fail, and the savepoint
    keeps that failure from ending the unit of work (never a 500)."""
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:
        if await repository.get_by_email(session, user.email) is None:
            raise  # not the email's
        return False
    audit.record(session, actor, "user.created", target_type="user", target_id=user.id)
    return True


async def _made_meanwhile(session: AsyncSession, email: str) -> User:
    """The user of ``email`` another unit of work has just committed."""
    user = await repository.get_by_email(session, email)
    assert user is not None, "a user of the email was committed"
    return user


def _refused(decisions: list[Decision]) -> RateLimited:
    return RateLimited(
        max(d.retry_after for d in decisions if not d.allowed),
        "Too many wrong passwords; try again later.",
    )


async def _reserve(limiter: RateLimiter, limits: list[tuple[str, int]]) -> None:
    """Count one attempt on every key *before* checking the password, so concurrent attempts
    can never all pass a check that only counted failures afterwards; 429 past any limit."""
    decisions = [await limiter.hit(k, n, FAILURE_WINDOW_SECONDS) for k, n in limits]
    if not all(d.allowed for d in decisions):
        raise _refused(decisions)


async def authenticate(
    session: AsyncSession, limiter: RateLimiter, email: str, password: str, *, ip: str
) -> User:
    """The active user with this email and password, else 401 ``invalid_credentials`` (the
    same for an unknown email, a wrong password and a disabled account). Attempts count
    per (account, address) and per address (``ip``: the client's, as
    ``kit.ratelimit.client_key`` counts it) before the password is checked, and a success
    takes its count back; an account past its ceiling of failures from everywhere still
    lets in an address that has not failed for it."""
    email = normalize_email(email)
    pair_key, ip_key, account_key = (
        f"password:account-ip:{email}:{ip}",
        f"password:ip:{ip}",
        f"password:account:{email}",
    )
    has_failed = not (await limiter.peek(pair_key, 1)).allowed
    if has_failed:
        ceiling = await limiter.peek(account_key, FAILURES_PER_ACCOUNT_CEILING)
        if not ceiling.allowed:
            raise _refused([ceiling])
    await _reserve(limiter, [(pair_key, FAILURES_PER_ACCOUNT), (ip_key, FAILURES_PER_IP)])
    user = await repository.get_by_email(session, email)
    password_hash = user.password_hash if user is not None else None
    valid = await asyncio.to_thread(verify_password, password_hash, password)
    if user is None or not user.is_active or not valid:
        await limiter.hit(account_key, FAILURES_PER_ACCOUNT_CEILING, FAILURE_WINDOW_SECONDS)
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    await limiter.reset(pair_key)
    await limiter.release(ip_key)
    if password_hash is not None and needs_rehash(password_hash):
        user.password_hash = await asyncio.to_thread(hash_password, password)
    return user


async def change_password(
    session: AsyncSession,
    limiter: RateLimiter,
    principal: UserPrincipal,
    current_password: str,
    new_password: str,
) -> None:
    """Replace the signed-in user's password and end their other dashboard sessions. Attempts are
    counted per user before the current password is checked (a right one takes its count
    back): past :data:`FAILURES_PER_ACCOUNT` wrong ones, 429."""
    user = principal.user
    key = f"password:change:{user.id}"
    await _reserve(limiter, [(key, FAILURES_PER_ACCOUNT)])
    if not await asyncio.to_thread(verify_password, user.password_hash, current_password):
        raise invalid_field(
            "current_password", "is not your current password", "invalid_credentials"
        )
    await limiter.release(key)
    check_password_rules(new_password, email=user.email, field="new_password")
    user.password_hash = await asyncio.to_thread(hash_password, new_password)
    await repository.revoke_other_dashboard_sessions(
        session, user.id, principal.dashboard_session_id, utcnow()
    )
    audit.record(
        session, principal.actor, "user.password_changed", target_type="user", target_id=user.id
    )


async def sign_out(session: AsyncSession, dashboard_session_id: uuid.UUID) -> None:
    cookies.revoke(await session.get_one(DashboardSession, dashboard_session_id))


async def sign_in_with_oidc(
    session: AsyncSession, email: str, name: str, *, allow_signup: bool
) -> User:
    """The user whose email an identity provider verified; created on first sign-in only
    when sign-up is open (else 403 ``signup_disabled``). A first sign-in at the same moment
    as another of the email (two tabs) gets the account the other made."""
    email = normalize_email(email)
    user = await repository.get_by_email(session, email)
    if user is None:
        if not allow_signup:
            raise Forbidden(
                f"No account uses {email} and sign-up is closed: ask for an invitation.",
                code="signup_disabled",
            )
        new = User(email=email, name=name[:200])
        if await _add_user(session, SYSTEM, new):
            return new
        user = await _made_meanwhile(session, email)  # two first sign-ins at once
    if not user.is_active:
        raise Forbidden("This account is disabled.", code="account_disabled")
    return user
