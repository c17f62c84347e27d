"""One key per purpose, derived from the configured secret keys (``KITHOST_SECRET_KEY``).

Each configured key (several: newest first) gives one key per :class:`Purpose` by HKDF-SHA256
(RFC 5869, ``info=b"kithost/<purpose>"``), so the key that encrypts secrets at rest is never
the one that signs a cookie, a link or an export pseudonym, and none of them is the key an
operator typed. Rotating ``KITHOST_SECRET_KEY`` rotates every purpose at once.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32


class Purpose(StrEnum):
    secrets = "secrets"
    """Secrets at rest (``kit.crypto.SecretBox``)."""
    dashboard_sessions = "dashboard-sessions"
    """The dashboard's sign-in cookie and its CSRF token (``auth.cookies``)."""
    oidc_flow = "oidc-flow"
    """The cookie holding single sign-on's state while the identity provider answers."""
    signed_links = "signed-links"
    """Signed strings that need no row: preview keys, export links (``kit.signed``)."""
    attachments = "attachments"
    """The upload and preview URLs of chat attachments (``chat.attachments``)."""
    pseudonyms = "pseudonyms"
    """Anonymous end users as exports and webhooks show them (``kit.pseudonyms``)."""


class Keys:
    """The configured secret keys (newest first) and what each purpose derives from them."""

    def __init__(self, configured: tuple[str, ...]) -> None:
        if not configured:
            raise ValueError("at least one secret key")
        self.configured = configured
        self._derived = {
            purpose: tuple(_derive(secret, purpose) for secret in configured) for purpose in Purpose
        }

    def derived(self, purpose: Purpose) -> tuple[bytes, ...]:
        """``purpose``'s keys, newest first: sign or encrypt with the first, accept all."""
        return self._derived[purpose]

    def current(self, purpose: Purpose) -> bytes:
        return self._derived[purpose][0]


@lru_cache
def derive_keys(configured: tuple[str, ...]) -> Keys:
    """The :class:`Keys` of ``configured``, derived once per process."""
    return Keys(configured)


def _derive(secret: str, purpose: Purpose) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=f"kithost/{purpose}".encode()
    )
    return hkdf.derive(secret.encode())
