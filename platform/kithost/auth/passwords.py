"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile), and the
rules a password chosen by a person must follow."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from kithost.errors import invalid_field

MIN_LENGTH = 12
MAX_LENGTH = 256
MIN_LOCAL_PART_CHECKED = 3
"""Shorter local parts of an email (``jo@…``) would forbid too many passwords to check."""

PARAMETERS: Parameters = profiles.RFC_9106_LOW_MEMORY
"""argon2id's cost. Stored hashes made with other parameters are replaced at the next
successful sign-in (:func:`needs_rehash`). The test suite swaps in a cheap hasher
(``tests/conftest.py``); ``tests/auth/test_login.py`` checks these."""

_hasher = PasswordHasher.from_parameters(PARAMETERS)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def needs_rehash(password_hash: str) -> bool:
    """Whether ``password_hash`` was made with other parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


@cache
def _decoy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(18))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; without a hash (an unknown account, or one without a
    password) the same argon2 work is done on a decoy, so timing does not tell them apart."""
    try:
        matches = _hasher.verify(password_hash or _decoy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matches and password_hash is not None


def generate_password() -> str:
    """A random password for accounts created by an operator (≈ 144 bits)."""
    return secrets.token_urlsafe(18)


def check_password_rules(password: str, *, email: str, field: str) -> None:
    """Refuse (422 on ``field``) a password too short or long, made of one repeated
    character, or containing the local part of the account's ``email``."""
    local_part = email.partition("@")[0].lower()
    if len(password) < MIN_LENGTH:
        problem = f"must be at least {MIN_LENGTH} characters long"
    elif len(password) > MAX_LENGTH:
        problem = f"must be at most {MAX_LENGTH} characters long"
    elif len(set(password)) == 1:
        problem = "must not be one character repeated"
    elif len(local_part) >= MIN_LOCAL_PART_CHECKED and local_part in password.lower():
        problem = "must not contain your email address"
    else:
        return
    raise invalid_field(field, problem, "weak_password")
