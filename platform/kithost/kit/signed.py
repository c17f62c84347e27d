"""Short-lived signed strings that need no row: an HMAC-SHA256 of a payload with a key
derived from the current encryption key and a purpose (so one purpose's signature is never
another's); rotating the encryption key ends every such string."""

from __future__ import annotations

import base64
import hashlib
import hmac

from kithost.settings import Settings


def signature(settings: Settings, purpose: bytes, payload: str) -> str:
    key = hmac.new(settings.encryption_keys()[0].encode(), purpose, "sha256")
    mac = hmac.new(key.digest(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def signed(settings: Settings, purpose: bytes, payload: str) -> str:
    """``payload.signature``."""
    return f"{payload}.{signature(settings, purpose, payload)}"


def verified(settings: Settings, purpose: bytes, value: str) -> str | None:
    """The payload of a ``signed`` value; None when the signature does not match."""
    payload, _, mac = value.rpartition(".")
    expected = signature(settings, purpose, payload)
    return payload if hmac.compare_digest(mac.encode(), expected.encode()) else None
