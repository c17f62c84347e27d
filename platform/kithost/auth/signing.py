"""Kithost's own JWTs (ES256): signing keys kept encrypted in the database, published as a
JWKS, rotated with ``kithost keys rotate``.

The newest unretired key signs. A retired key stays published for
:data:`PUBLISHED_AFTER_RETIREMENT` (longer than any token Kithost issues lives), so tokens
it signed verify until they expire.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import repository
from kithost.kit.crypto import SecretBox
from kithost.models import SigningKey
from kithost.models.base import utcnow

ALGORITHM = "ES256"
PUBLISHED_AFTER_RETIREMENT = timedelta(hours=1)


class InvalidToken(Exception):
    """A token that is malformed, forged, expired or meant for someone else."""


def _new_key(box: SecretBox) -> SigningKey:
    kid = secrets.token_urlsafe(12)
    key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": ALGORITHM})
    return SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        private_key=box.encrypt(key.as_pem(private=True).decode()),
        public_jwk=key.as_dict(private=False),
    )


async def current_key(session: AsyncSession, box: SecretBox) -> SigningKey:
    """The key that signs now; created on first use."""
    key = await repository.newest_signing_key(session)
    if key is None:
        key = _new_key(box)
        session.add(key)
        await session.flush()
    return key


async def rotate(session: AsyncSession, box: SecretBox) -> SigningKey:
    """Retire the signing key (it stays published a while) and start signing with a new one."""
    old = await repository.newest_signing_key(session)
    if old is not None:
        old.retired_at = utcnow()
    key = _new_key(box)
    session.add(key)
    await session.flush()
    return key


async def published_keys(session: AsyncSession) -> list[SigningKey]:
    return await repository.signing_keys_retired_after(
        session, utcnow() - PUBLISHED_AFTER_RETIREMENT
    )


def jwks(keys: list[SigningKey]) -> dict[str, Any]:
    return {"keys": [key.public_jwk for key in keys]}


async def sign(
    session: AsyncSession,
    box: SecretBox,
    claims: dict[str, Any],
    ttl_seconds: int,
    *,
    now: int | None = None,
) -> str:
    """A JWT with ``claims`` plus ``iat`` (``now``), ``exp`` and a random ``jti``."""
    key = await current_key(session, box)
    now = int(time.time()) if now is None else now
    payload = {**claims, "iat": now, "exp": now + ttl_seconds, "jti": secrets.token_urlsafe(16)}
    private = ECKey.import_key(box.decrypt(key.private_key), {"kid": key.kid})
    return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, payload, private)


async def verify(
    session: AsyncSession, token: str, *, issuer: str, audience: str
) -> dict[str, Any]:
    """The claims of a token Kithost signed for ``audience``; :class:`InvalidToken` otherwise."""
    keys = KeySet([ECKey.import_key(k.public_jwk) for k in await published_keys(session)])
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
    )
    try:
        decoded = jwt.decode(token, keys, algorithms=[ALGORITHM])
        registry.validate(decoded.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidToken(type(exc).__name__) from exc
    claims: dict[str, Any] = decoded.claims
    return claims
