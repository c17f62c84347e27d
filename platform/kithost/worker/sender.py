"""Sending many Celery tasks from an event loop without a broker round trip each.

A :class:`TaskSender` publishes from one thread of its own: whatever requests handed it
while that thread was busy goes in the next publish, all of it in one go
(``kit.batching.Batcher``; kombu's ``Producer.batch``: on Redis, one pipelined round trip).
Each caller still waits until the broker has its task, and gets the broker's error if it
failed.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError

from kithost.kit.batching import Batcher


@dataclass(frozen=True)
class _Task:
    name: str
    args: list[Any]
    argsrepr: str


class TaskSender:
    def __init__(self, celery: Celery) -> None:
        self._celery = celery
        self._thread = ThreadPoolExecutor(1, "task-sender")
        self._tasks = Batcher(self._publish_in_thread)

    async def send(self, name: str, args: list[Any], argsrepr: str) -> None:
        """Send task ``name`` with ``args`` (shown as ``argsrepr`` by monitoring tools);
        returns once the broker has it. Raises kombu's ``OperationalError`` when the broker
        cannot be reached."""
        await self._tasks.submit(_Task(name, args, argsrepr))

    async def aclose(self) -> None:
        """Send what was handed in, then stop the thread."""
        await self._tasks.drain()
        self._thread.shutdown()

    async def _publish_in_thread(self, tasks: list[_Task]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._publish, tasks)

    def _publish(self, tasks: list[_Task]) -> None:
        with self._celery.producer_or_acquire() as producer:
            connection = producer.connection
            try:
                with producer.batch():
                    for task in tasks:
                        self._celery.send_task(
                            task.name,
                            args=task.args,
                            argsrepr=task.argsrepr,
                            kwargsrepr="{}",
                            producer=producer,
                            retry=False,
                            ignore_result=True,
                        )
            except connection.connection_errors + connection.channel_errors as exc:
                raise OperationalError(str(exc)) from exc
