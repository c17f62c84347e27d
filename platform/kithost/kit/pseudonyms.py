"""End users as exports show them (the CSV of analytics events, conversation exports)."""

from __future__ import annotations

import hashlib
import hmac

from kithost.kit.keys import Keys, Purpose

PREFIX = "a:h_"
"""What every pseudonym starts with; no device id does (they are ``anon_…``)."""


def exported_end_user(end_user_id: str, keys: Keys) -> str:
    """How an end user appears in exports: a device id is a credential (it mints sessions),
    so an anonymous one becomes :data:`PREFIX` and a keyed hash (HMAC-SHA256 with the current
    :attr:`~kithost.kit.keys.Purpose.pseudonyms` key, stable while it is, so rows of one
    visitor still group); verified ids are the tenant's own."""
    if not end_user_id.startswith("a:"):
        return end_user_id
    key = keys.current(Purpose.pseudonyms)
    digest = hmac.new(key, f"export:{end_user_id}".encode(), hashlib.sha256)
    return f"{PREFIX}{digest.hexdigest()[:32]}"
