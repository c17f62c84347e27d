"""Kithost's own JWTs (ES256): signing keys kept encrypted in the database, published as a
JWKS, rotated with ``kithost keys rotate`` (``--withdraw-previous`` when a key leaked).

The newest unretired key signs. A retired key stays published for
:data:`PUBLISHED_AFTER_RETIREMENT` (longer than any token Kithost issues lives), so tokens
it signed verify until they expire.

Signing and verifying run on every session mint and API call, so each process keeps its
keys in memory (:class:`KeyRing`: ``create_app`` gives one to its sessionmaker, whose
sessions share it through ``session.info``; a session of any other sessionmaker, a CLI
verb's, has one of its own) and reloads them every :data:`REFRESH_SECONDS` (one small
query: a key already held is not parsed again), or at once when a token names a key it does
not hold (at most once per :data:`UNKNOWN_KID_RELOAD_SECONDS`). No process is told of a
rotation or a withdrawal: each sees it at its next reload. So every process signs with the
new key, and refuses tokens of a withdrawn one, within ``REFRESH_SECONDS`` (the process
that rotated or withdrew, at once); what keeps verified tokens beyond one request (the chat
route's ``chat.auth.VerifiedTokens``) asks :meth:`KeyRing.trusts` on every use.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth import repository
from kithost.db import Sessionmaker
from kithost.kit.crypto import SecretBox
from kithost.models import SigningKey
from kithost.models.base import utcnow

ALGORITHM = "ES256"
PUBLISHED_AFTER_RETIREMENT = timedelta(hours=1)
REFRESH_SECONDS = 5.0
"""How old a process's copy of the keys may get: README promises a withdrawal within it."""
UNKNOWN_KID_RELOAD_SECONDS = 1.0
KEY_RING = "kithost.key_ring"


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
        key_ring(session).invalidate()
    return key


async def rotate(session: AsyncSession, box: SecretBox) -> SigningKey:
    """Retire the signing key (it stays published a while) and start signing with a new one."""
    old = await repository.newest_signing_key(session)
    if old is not None:
        old.retired_at = utcnow()
    key = _new_key(box)
    session.add(key)
    await session.flush()
    key_ring(session).invalidate()
    return key


async def withdraw_retired(session: AsyncSession) -> list[str]:
    """Stop publishing (and trusting) every retired key now rather than after
    :data:`PUBLISHED_AFTER_RETIREMENT`, for a key that leaked: tokens it signed stop
    verifying at once in this process, within :data:`REFRESH_SECONDS` in every other. The
    kids withdrawn."""
    gone = utcnow() - PUBLISHED_AFTER_RETIREMENT - timedelta(seconds=1)
    withdrawn = [k for k in await published_keys(session) if k.retired_at is not None]
    for key in withdrawn:
        key.retired_at = gone
    await session.flush()
    key_ring(session).invalidate()
    return [k.kid for k in withdrawn]


async def published_keys(session: AsyncSession) -> list[SigningKey]:
    return await repository.signing_keys_retired_after(
        session, utcnow() - PUBLISHED_AFTER_RETIREMENT
    )


def jwks(keys: list[SigningKey]) -> dict[str, Any]:
    return {"keys": [key.public_jwk for key in keys]}


@dataclass(frozen=True)
class _PublicKey:
    key: ECKey
    retired_at: datetime | None


@dataclass(frozen=True)
class _Keys:
    signer: tuple[str, str] | None
    """The newest unretired key: kid and encrypted private key (None: no key yet)."""
    public: dict[str, _PublicKey]
    loaded_at: float


class KeyRing:
    """One process's copy of the signing keys (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys: _Keys | None = None
        self._private: dict[str, ECKey] = {}
        self._clock = clock

    def invalidate(self) -> None:
        self._keys = None

    def trusts(self, kid: str) -> bool:
        """Whether ``kid`` is published, from keys loaded less than :data:`REFRESH_SECONDS`
        ago (a dict lookup). False when they are older: then ask :meth:`public_key`, which
        reloads them."""
        keys = self._keys
        if keys is None or self._clock() - keys.loaded_at > REFRESH_SECONDS:
            return False
        return _published(keys.public.get(kid)) is not None

    async def signer(self, session: AsyncSession, box: SecretBox) -> tuple[str, ECKey]:
        keys = await self._current(session)
        if keys.signer is None:
            keys = await self._load(session)
        if keys.signer is None:  # no key yet: make the first one
            key = await current_key(session, box)
            return key.kid, _private(box, key.kid, key.private_key)
        kid, encrypted = keys.signer
        private = self._private.get(kid)
        if private is None:
            private = self._private[kid] = _private(box, kid, encrypted)
        return kid, private

    async def public_key(self, session: AsyncSession, kid: str) -> ECKey | None:
        """The key ``kid``, if it is published now."""
        keys = await self._current(session)
        if kid not in keys.public and self._clock() - keys.loaded_at > UNKNOWN_KID_RELOAD_SECONDS:
            keys = await self._load(session)
        return _published(keys.public.get(kid))

    async def _current(self, session: AsyncSession) -> _Keys:
        keys = self._keys
        if keys is None or self._clock() - keys.loaded_at > REFRESH_SECONDS:
            keys = await self._load(session)
        return keys

    async def _load(self, session: AsyncSession) -> _Keys:
        published = await published_keys(session)
        newest = next((k for k in published if k.retired_at is None), None)
        held = {} if self._keys is None else self._keys.public
        keys = _Keys(
            signer=None if newest is None else (newest.kid, newest.private_key),
            public={
                # A kid's public key never changes: only its retirement is read again.
                k.kid: _PublicKey(
                    held[k.kid].key if k.kid in held else ECKey.import_key(k.public_jwk),
                    k.retired_at,
                )
                for k in published
            },
            loaded_at=self._clock(),
        )
        self._keys = keys
        self._private = {kid: key for kid, key in self._private.items() if kid in keys.public}
        return keys


def _published(found: _PublicKey | None) -> ECKey | None:
    if found is None or (
        found.retired_at is not None and found.retired_at <= utcnow() - PUBLISHED_AFTER_RETIREMENT
    ):
        return None
    return found.key


def key_ring(session: AsyncSession) -> KeyRing:
    """The key ring of ``session``'s sessionmaker (``info`` of ``db.create_sessionmaker``),
    else one of the session's own."""
    ring: KeyRing = session.info.setdefault(KEY_RING, KeyRing())
    return ring


def sessions_key_ring(sessionmaker: Sessionmaker) -> KeyRing:
    """The key ring every session of ``sessionmaker`` uses (one is given it if it had none)."""
    info: dict[str, Any] = sessionmaker.kw.setdefault("info", {})
    ring: KeyRing = info.setdefault(KEY_RING, KeyRing())
    return ring


def _private(box: SecretBox, kid: str, encrypted: str) -> ECKey:
    return ECKey.import_key(box.decrypt(encrypted), {"kid": kid})


async def sign(
    session: AsyncSession,
    box: SecretBox,
    claims: dict[str, Any],
    ttl_seconds: int,
    *,
    now: int | None = None,
) -> str:
    """A JWT with ``claims`` plus ``iat`` (``now``), ``exp`` and a random ``jti``."""
    kid, private = await key_ring(session).signer(session, box)
    now = int(time.time()) if now is None else now
    payload = {**claims, "iat": now, "exp": now + ttl_seconds, "jti": secrets.token_urlsafe(16)}
    return jwt.encode({"alg": ALGORITHM, "kid": kid, "typ": "JWT"}, payload, private)


async def verify(
    session: AsyncSession, token: str, *, issuer: str, audience: str
) -> dict[str, Any]:
    """The claims of a token Kithost signed for ``audience``; :class:`InvalidToken` otherwise."""
    key = await key_ring(session).public_key(session, token_kid(token))
    if key is None:
        raise InvalidToken("unknown or unpublished key")
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        iat={"essential": True},  # ``sign`` always sets it; no later than now
        sub={"essential": True},
    )
    try:
        decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
        registry.validate(decoded.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidToken(type(exc).__name__) from exc
    claims: dict[str, Any] = decoded.claims
    return claims


def token_kid(token: str) -> str:
    """The ``kid`` of a compact JWS's header, unverified (it only picks the key);
    :class:`InvalidToken` when it has none."""
    header = token.partition(".")[0]
    try:
        # orjson: bounded nesting (json.loads would raise RecursionError, a 500).
        decoded = orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed header") from exc
    kid = decoded.get("kid") if isinstance(decoded, dict) else None
    if not isinstance(kid, str):
        raise InvalidToken("no kid")
    return kid
