"""Fixed-window rate limiting: count events per key, refuse past a limit until the window ends.

One limiter per app (``AppState.rate_limiter``, the ``state.AppRateLimiter`` dependency):
:class:`RedisRateLimiter` when ``KITHOST_REDIS_URL`` is set, so every process shares the
counts, else :class:`MemoryRateLimiter`, whose counts live in this process only. Keys are
the caller's (``login:ip:203.0.113.7``); a window starts with its key's first event.

Not the ``limits`` library (5.8, measured 2026-12-05): its keys carry the limit and window,
where callers here peek and hit one key with different limits; it has no release on Redis
(the script below would stay); its Redis extra wants ``redis<8``; and its memory storage
scans every key on nearly every hit: 57 µs a hit at 1,000 live keys and 807 µs at 10,000,
against 2.8 and 5.4 µs here, and self-hosted mints 26 % slower over 40 s of new visitors.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from kithost.errors import ServiceUnavailable

REDIS_PREFIX = "kithost:ratelimit:"
REDIS_TIMEOUT_SECONDS = 2
_RELEASE_SCRIPT = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
"""
"""DECR only a live, positive count: a plain DECR of an expired key would leave -1 forever."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int
    """Whole seconds until the key's window ends when refused; 0 when allowed."""


IPV6_SUBSCRIBER_PREFIX = 64
"""What an IPv6 client's requests are counted under: its /64, the least a subscriber (a home,
a server) is given, within which it may take a new address for every request."""


def client_key(host: str) -> str:
    """The part of a client's address (``request.client.host``) a per-client limit counts:
    an IPv4 address as it is (one given as IPv6, ``::ffff:203.0.113.7``, too) and an IPv6
    address's /64 (``2001:db8:1:2::/64``), since a client rotating through its own /64 would
    otherwise be a new client at every request. Anything else (``unknown``, a name) as it is."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_SUBSCRIBER_PREFIX), strict=False))
    return str(address)


def _decide(count: int, limit: int, seconds_left: float) -> Decision:
    if count <= limit:
        return Decision(True, 0)
    return Decision(False, max(1, math.ceil(seconds_left)))


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> Decision:
        """Count one event for ``key``; refused once its window holds more than ``limit``."""

    async def peek(self, key: str, limit: int) -> Decision:
        """Whether one more event would be allowed, counting nothing."""

    async def release(self, key: str) -> None:
        """Take back one event :meth:`hit` counted (never below zero, window unchanged):
        callers that count an attempt before knowing its outcome release a harmless one."""

    async def reset(self, key: str) -> None:
        """Forget ``key``'s events."""

    async def aclose(self) -> None: ...


class MemoryRateLimiter:
    """Counts in this process (one event loop: no locking needed, nothing awaits)."""

    _SWEEP_AT = 10_000

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        """key -> (events, monotonic time the window ends)"""
        self._sweep_at = self._SWEEP_AT

    def _live(self, key: str, now: float) -> tuple[int, float] | None:
        window = self._windows.get(key)
        return window if window is not None and window[1] > now else None

    async def hit(self, key: str, limit: int, window_seconds: int) -> Decision:
        now = time.monotonic()
        count, ends = self._live(key, now) or (0, now + window_seconds)
        self._windows[key] = (count + 1, ends)
        if len(self._windows) >= self._sweep_at:
            self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
            self._sweep_at = max(self._SWEEP_AT, 2 * len(self._windows))
        return _decide(count + 1, limit, ends - now)

    async def peek(self, key: str, limit: int) -> Decision:
        now = time.monotonic()
        count, ends = self._live(key, now) or (0, now)
        return _decide(count + 1, limit, ends - now)

    async def release(self, key: str) -> None:
        window = self._live(key, time.monotonic())
        if window is not None:
            self._windows[key] = (max(0, window[0] - 1), window[1])

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    async def aclose(self) -> None:
        pass


class RedisRateLimiter:
    """Counts in Redis (``SET NX EX`` + ``INCR`` in one transaction), shared by processes.

    An unreachable Redis answers 503 ``rate_limiter_unavailable``: limits are never
    silently dropped."""

    def __init__(self, url: str, prefix: str = REDIS_PREFIX) -> None:
        self._redis = Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._prefix = prefix

    async def hit(self, key: str, limit: int, window_seconds: int) -> Decision:
        name = self._prefix + key
        with _reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(name, 0, ex=window_seconds, nx=True)
                pipe.incr(name)
                pipe.pttl(name)
                _, count, pttl = await pipe.execute()
        return _decide(int(count), limit, int(pttl) / 1000)

    async def peek(self, key: str, limit: int) -> Decision:
        name = self._prefix + key
        with _reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(name)
                pipe.pttl(name)
                count, pttl = await pipe.execute()
        return _decide(int(count or 0) + 1, limit, int(pttl) / 1000)

    async def release(self, key: str) -> None:
        with _reachable():
            await self._redis.eval(_RELEASE_SCRIPT, 1, self._prefix + key)

    async def reset(self, key: str) -> None:
        with _reachable():
            await self._redis.delete(self._prefix + key)

    async def aclose(self) -> None:
        await self._redis.aclose()


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise ServiceUnavailable(
            "Rate limiting is unavailable; try again shortly.", code="rate_limiter_unavailable"
        ) from exc


def create_rate_limiter(redis_url: str | None) -> RateLimiter:
    """On Redis when ``redis_url`` is set (shared by every process), in-process otherwise."""
    if redis_url:
        return RedisRateLimiter(redis_url)
    return MemoryRateLimiter()
