"""Short-lived signed strings that need no row: an HMAC-SHA256 of a payload with a key
derived from the current :attr:`~kithost.kit.keys.Purpose.signed_links` key and a purpose
(so one purpose's signature is never another's); rotating the secret key ends every such
string."""

from __future__ import annotations

import base64
import hashlib
import hmac

from kithost.kit.keys import Keys, Purpose


def signature(keys: Keys, purpose: bytes, payload: str) -> str:
    key = hmac.new(keys.current(Purpose.signed_links), purpose, "sha256")
    mac = hmac.new(key.digest(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def signed(keys: Keys, purpose: bytes, payload: str) -> str:
    """``payload.signature``."""
    return f"{payload}.{signature(keys, purpose, payload)}"


def verified(keys: Keys, purpose: bytes, value: str) -> str | None:
    """The payload of a ``signed`` value; None when the signature does not match."""
    payload, _, mac = value.rpartition(".")
    expected = signature(keys, purpose, payload)
    return payload if hmac.compare_digest(mac.encode(), expected.encode()) else None
