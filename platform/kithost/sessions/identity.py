"""The end user behind a visitor session: verified by the tenant's backend, or anonymous.

A tenant's backend vouches for its signed-in user with an *identity token*: a JWT signed
HS256 with the widget's identity secret, carrying ``sub`` (no control or bidi characters),
``exp`` (at most 24 hours ahead), optionally ``nbf`` (honoured), ``name`` and ``email``.
Without one (and when the widget does not
require identity) the loader sends an anonymous device id. End-user ids are prefixed by
kind (``u:`` verified, ``a:`` anonymous), so an anonymous id can never pose as a user.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import TypeGuard

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from kithost.errors import Unauthorized, invalid_field
from kithost.kit.tokens import hash_secret
from kithost.kit.visible import INVISIBLE_MESSAGE, has_invisible

MAX_IDENTITY_LIFETIME_SECONDS = 24 * 3600
CLOCK_SKEW_SECONDS = 60
DEVICE_ID = re.compile(r"anon_[A-Za-z0-9_-]{16,64}")
MAX_SUBJECT_LENGTH = 200


@dataclass(frozen=True)
class EndUser:
    id: str
    verified: bool
    name: str | None = None
    email: str | None = None
    expires_at: int | None = None
    """When the identity token vouching for this user expires (None: anonymous). Sessions
    end then too, refreshes included: the loader asks the tenant's backend again."""
    secret_fingerprint: str | None = None
    """Which identity secret verified the token (:func:`secret_fingerprint`): a session
    derived from it stops refreshing once the widget's secret is removed or rotated."""
    started_at: int | None = None
    """When the session's first credential was minted (None: now); refreshes keep it."""
    embedder: str | None = None
    """The page framing the session's framed chat, as its first token named it (refreshes
    keep it; ``sessions.tokens``)."""


def secret_fingerprint(secret: str) -> str:
    """A short, one-way name of an identity secret (256 random bits: a hash prefix is safe)."""
    return hash_secret(secret)[:16]


def _refused(why: str) -> Unauthorized:
    return Unauthorized(f"The identity token is not valid: {why}.", code="invalid_identity_token")


def _check_visible(claims: dict[str, object], name: str) -> None:
    value = claims.get(name)
    if isinstance(value, str) and has_invisible(value):
        raise _refused(f"{name} {INVISIBLE_MESSAGE}")


def _optional_text(claims: dict[str, object], name: str) -> str | None:
    _check_visible(claims, name)
    value = claims.get(name)
    return value[:320] if isinstance(value, str) and value else None


def _is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number that is finite (a token's JSON may spell NaN or Infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def verify_identity_token(token: str, secret: str, *, now: float | None = None) -> EndUser:
    """The user an identity token vouches for; :class:`Unauthorized` for any flaw."""
    now = time.time() if now is None else now
    try:
        decoded = jwt.decode(token, OctKey.import_key(secret), algorithms=["HS256"])
    except (JoseError, ValueError, TypeError) as exc:
        raise _refused("not signed with this widget's identity secret (HS256)") from exc
    claims = decoded.claims
    sub, exp = claims.get("sub"), claims.get("exp")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUBJECT_LENGTH:
        raise _refused(f"sub must be a string of 1 to {MAX_SUBJECT_LENGTH} characters")
    _check_visible(claims, "sub")
    if not _is_number(exp):
        raise _refused("exp is required")
    nbf = claims.get("nbf")
    if nbf is not None and not (_is_number(nbf) and nbf <= now + CLOCK_SKEW_SECONDS):
        raise _refused("it is not valid yet (nbf is in the future or not a number)")
    if exp <= now - CLOCK_SKEW_SECONDS:
        raise _refused("it has expired")
    if exp > now + MAX_IDENTITY_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise _refused("exp is more than 24 hours ahead")
    return EndUser(
        id=f"u:{sub}",
        verified=True,
        name=_optional_text(claims, "name"),
        email=_optional_text(claims, "email"),
        expires_at=int(exp),
        secret_fingerprint=secret_fingerprint(secret),
    )


def anonymous_user(device_id: str) -> EndUser:
    """An anonymous visitor, known only by the device id the loader keeps."""
    if not DEVICE_ID.fullmatch(device_id):
        raise invalid_field("device_id", "expected anon_ and 16 to 64 letters, digits, - or _")
    return EndUser(id=f"a:{device_id}", verified=False)
