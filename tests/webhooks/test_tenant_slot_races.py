"""A tenant's slow endpoints attempted at once, through an app whose units of work commit
(``tests.races``), each attempt on a connection of its own: one is sent, the others wait
their turn, unsent, for the backstop (the attempt sent hands the turn on as it ends); the
tenant's turn is taken in one statement, so two workers never both take it."""

from __future__ import annotations

import asyncio
from itertools import islice

import pytest

from kithost.settings import Settings
from kithost.webhooks import delivery
from tests.races import racing_app
from tests.webhooks.helpers import Receiver, attempt, hook_at, pending

AT_ONCE = 6


async def test_a_tenants_slow_endpoints_attempted_at_once_send_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each slow endpoint held only itself: as many attempts went at once as the tenant had
    slow endpoints, each holding a worker."""
    async with racing_app(settings, monkeypatch) as racing:
        app = racing.app
        with Receiver(hold=True) as receiver:
            async with racing.arranging() as session:
                tenant = await racing.tenant(session)
                urls = [f"{receiver.url}?{n}" for n in range(AT_ONCE)]
                hooks = [await hook_at(app, session, tenant, url) for url in urls]
                tasks = [await pending(session, hook) for hook in hooks]
            await racing.warm(AT_ONCE)
            attempts = [asyncio.create_task(attempt(app, task)) for task in tasks]
            try:
                async with asyncio.timeout(10):  # all but the one sent, held at the receiver
                    for ended in islice(asyncio.as_completed(attempts), AT_ONCE - 1):
                        await ended
                sent_at_once = len(receiver.received)
            finally:
                receiver.release.set()
                outcomes = await asyncio.gather(*attempts)
    assert sent_at_once == 1
    assert [o.delivered for o in outcomes].count(True) == 1
    waited = [o for o in outcomes if not o.delivered]
    assert all(o.retry for o in waited)
    assert all(o.wait_seconds == delivery.TURN_BACKSTOP.total_seconds() for o in waited)
    assert receiver.most_in_flight == 1
