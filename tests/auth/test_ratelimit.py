"""The rate limiter's contract, kept alike by the in-process and the Redis implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kithost.app import create_app
from kithost.errors import ServiceUnavailable
from kithost.kit.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tests.auth.helpers import redis_limiter
from tests.conftest import REDIS_URL, make_settings


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    limiter = MemoryRateLimiter() if request.param == "memory" else redis_limiter()
    yield limiter
    await limiter.aclose()


async def test_refuses_past_the_limit_until_the_window_ends(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert (await limiter.hit("k", 3, 60)).allowed
    refused = await limiter.hit("k", 3, 60)
    assert not refused.allowed
    assert 55 <= refused.retry_after <= 60
    assert not (await limiter.peek("k", 3)).allowed
    assert (await limiter.hit("other", 3, 60)).allowed


async def test_peek_counts_nothing(limiter: RateLimiter) -> None:
    for _ in range(5):
        assert (await limiter.peek("k", 2)) == (await limiter.peek("fresh", 2))
    assert (await limiter.hit("k", 2, 60)).allowed
    assert (await limiter.peek("k", 2)).allowed
    assert (await limiter.hit("k", 2, 60)).allowed
    last = await limiter.peek("k", 2)
    assert not last.allowed
    assert last.retry_after > 0


async def test_window_expires(limiter: RateLimiter) -> None:
    assert (await limiter.hit("k", 1, 1)).allowed
    refused = await limiter.hit("k", 1, 1)
    assert (refused.allowed, refused.retry_after) == (False, 1)
    await asyncio.sleep(1.1)
    assert (await limiter.peek("k", 1)).allowed
    assert (await limiter.hit("k", 1, 1)).allowed


async def test_reset_forgets_a_key(limiter: RateLimiter) -> None:
    await limiter.hit("k", 1, 60)
    await limiter.hit("other", 1, 60)
    await limiter.reset("k")
    assert (await limiter.peek("k", 1)).allowed
    assert not (await limiter.peek("other", 1)).allowed


async def test_memory_limiter_forgets_ended_windows() -> None:
    limiter = MemoryRateLimiter()
    for i in range(MemoryRateLimiter._SWEEP_AT - 1):
        await limiter.hit(f"short-{i}", 1, 1)
    await asyncio.sleep(1.1)
    await limiter.hit("long", 1, 60)
    assert limiter._windows.keys() == {"long"}


async def test_unreachable_redis_is_503() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0")
    with pytest.raises(ServiceUnavailable) as refused:
        await limiter.hit("k", 1, 60)
    assert refused.value.code == "rate_limiter_unavailable"
    await limiter.aclose()


@pytest.mark.parametrize(
    ("redis_url", "kind"), [(None, MemoryRateLimiter), (REDIS_URL, RedisRateLimiter)]
)
async def test_the_app_uses_redis_when_configured(
    tmp_path: Path, redis_url: str | None, kind: type[RateLimiter]
) -> None:
    settings = make_settings(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", "unused", redis_url=redis_url
    )
    limiter = create_app(settings).state.rate_limiter
    assert isinstance(limiter, kind)
    await limiter.aclose()


async def test_release_takes_back_one_event(limiter: RateLimiter) -> None:
    await limiter.release("absent")
    assert (await limiter.peek("absent", 0)).allowed is False
    assert (await limiter.peek("absent", 1)).allowed
    await limiter.hit("k", 1, 60)
    await limiter.release("k")
    await limiter.release("k")
    assert (await limiter.hit("k", 1, 60)).allowed
    assert not (await limiter.hit("k", 1, 60)).allowed
