"""``kit.batching.Batcher``: what is handed in while a batch is handled goes in the next
one, all together; every caller of a batch gets its outcome."""

from __future__ import annotations

import asyncio

import pytest

from kithost.kit.batching import Batcher


async def test_items_handed_in_meanwhile_share_the_next_batch() -> None:
    batches: list[list[int]] = []
    first_started = asyncio.Event()
    go_on = asyncio.Event()

    async def handle(items: list[int]) -> None:
        batches.append(items)
        first_started.set()
        await go_on.wait()

    batcher = Batcher(handle)
    first = asyncio.create_task(batcher.submit(1))
    await first_started.wait()
    rest = [asyncio.create_task(batcher.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    assert not any(task.done() for task in (first, *rest))
    go_on.set()
    await asyncio.gather(first, *rest)
    assert batches == [[1], [2, 3, 4]]


async def test_every_caller_of_a_failed_batch_gets_its_error_and_the_next_batch_runs() -> None:
    seen: list[list[str]] = []

    async def handle(items: list[str]) -> None:
        seen.append(items)
        if "bad" in items:
            raise ConnectionError("the broker is gone")

    batcher = Batcher(handle)
    outcomes = await asyncio.gather(
        batcher.submit("bad"), batcher.submit("good"), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [ConnectionError, ConnectionError]
    await batcher.submit("later")
    assert seen == [["bad", "good"], ["later"]]


async def test_a_cancelled_callers_item_is_still_handled() -> None:
    handled: list[str] = []
    go_on = asyncio.Event()

    async def handle(items: list[str]) -> None:
        await go_on.wait()
        handled.extend(items)

    batcher = Batcher(handle)
    leaving = asyncio.create_task(batcher.submit("left"))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    go_on.set()
    await batcher.submit("next")
    assert handled == ["left", "next"]


async def test_draining_waits_for_every_batch_handed_in() -> None:
    handled: list[list[int]] = []

    async def handle(items: list[int]) -> None:
        await asyncio.sleep(0)
        handled.append(items)

    batcher = Batcher(handle)
    await batcher.drain()  # nothing handed in: returns at once
    callers = [asyncio.ensure_future(batcher.submit(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0)  # all handed in, none handled yet
    await batcher.drain()
    assert sorted(n for batch in handled for n in batch) == [1, 2, 3]
    await asyncio.gather(*callers)
