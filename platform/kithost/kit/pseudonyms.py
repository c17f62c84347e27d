"""End users as exports show them (the CSV of analytics events, conversation exports)."""

from __future__ import annotations

import hashlib
import hmac


def exported_end_user(end_user_id: str, key: str) -> str:
    """How an end user appears in exports: a device id is a credential (it mints sessions),
    so an anonymous one becomes ``a:h_`` and a keyed hash (HMAC-SHA256 with ``key``, stable
    while it is, so rows of one visitor still group); verified ids are the tenant's own."""
    if not end_user_id.startswith("a:"):
        return end_user_id
    digest = hmac.new(key.encode(), f"export:{end_user_id}".encode(), hashlib.sha256)
    return f"a:h_{digest.hexdigest()[:32]}"
