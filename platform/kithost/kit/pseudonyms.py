"""End users as exports show them (the CSV of analytics events, conversation exports)."""

from __future__ import annotations

import hashlib
import hmac

from kithost.kit.keys import Keys, Purpose


def exported_end_user(end_user_id: str, keys: Keys) -> str:
    """How an end user appears in exports: a device id is a credential (it mints sessions),
    so an anonymous one becomes ``a:h_`` and a keyed hash (HMAC-SHA256 with the current
    :attr:`~kithost.kit.keys.Purpose.pseudonyms` key, stable while it is, so rows of one
    visitor still group); verified ids are the tenant's own."""
    if not end_user_id.startswith("a:"):
        return end_user_id
    key = keys.current(Purpose.pseudonyms)
    digest = hmac.new(key, f"export:{end_user_id}".encode(), hashlib.sha256)
    return f"a:h_{digest.hexdigest()[:32]}"
