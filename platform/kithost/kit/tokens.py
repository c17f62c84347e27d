"""Random identifiers and secrets, and the one-way hash that stores secrets."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def random_token(prefix: str, nbytes: int = 24) -> str:
    """``prefix`` + ``nbytes`` random bytes, URL-safe (24 bytes = 192 bits)."""
    return prefix + secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret (not for passwords: those use argon2)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, hashed: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), hashed)
