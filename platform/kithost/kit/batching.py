"""Work many coroutines hand in, done a batch at a time: while one batch is being handled,
whatever is handed in waits, and all of it goes in the next batch. Each caller returns once
the batch holding its item is done, or gets that batch's exception. Under load the cost per
item falls (one round trip or commit for many); alone, an item goes at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(self, handle: Callable[[list[T]], Awaitable[None]]) -> None:
        self._handle = handle
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._running: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Hand in ``item``; return once its batch is handled (a cancelled caller's item is
        still handled)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._running is None:
            self._running = asyncio.create_task(self._run())
        await done

    async def drain(self) -> None:
        """Return once everything handed in so far is handled."""
        if self._running is not None:
            await asyncio.wait([self._running])

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                failure: Exception | None = None
                try:
                    await self._handle([item for item, _ in batch])
                except Exception as exc:
                    failure = exc
                for _, done in batch:
                    if done.done():  # its caller was cancelled
                        continue
                    if failure is None:
                        done.set_result(None)
                    else:
                        done.set_exception(failure)
        finally:
            self._running = None
