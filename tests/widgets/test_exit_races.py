"""Leaving Agent Builder while editors act at once (``tests.races``: each request a unit of
work of its own, at once on PostgreSQL): of converting and publishing a hosted widget with the
same ETag exactly one wins, none answers 500, and the widget is the winner's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx2
import pytest

from kithost.auth.principals import CLI
from kithost.models import Membership, Role, Widget
from kithost.settings import Settings
from kithost.users.service import create_user
from tests.factories import PASSWORD, login, set_draft
from tests.races import RacingApp, at_once, racing_app
from tests.widgets.helpers import HOSTED

AT_ONCE = 6


@pytest.fixture
async def race(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RacingApp]:
    async with racing_app(settings, monkeypatch) as racing:
        yield racing


async def test_of_converting_and_publishing_at_once_one_wins(race: RacingApp) -> None:
    async with race.arranging() as session:
        tenant = await race.tenant(session)
        user = (await create_user(session, CLI, race.email("owner"), password=PASSWORD)).user
        session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=Role.owner))
        headers = (await login(race.app, session, user)).headers
    widgets = f"/api/v1/tenants/{tenant.slug}/widgets"
    created = await race.client.post(widgets, json={"name": "Shop chat"}, headers=headers)
    assert created.status_code == 201, created.text
    async with race.arranging() as session:
        stored = await session.get_one(Widget, uuid.UUID(created.json()["id"]))
        set_draft(stored, {**stored.draft, **HOSTED})
    widget = f"{widgets}/{created.json()['id']}"
    matching = {**headers, "If-Match": '"2"'}
    await race.warm(AT_ONCE)

    async def act(n: int) -> httpx2.Response:
        if n % 2:
            return await race.client.post(f"{widget}/publish", headers=matching)
        return await race.client.post(f"{widget}/convert", headers=matching)

    answers = await at_once(AT_ONCE, act)

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [412] * (AT_ONCE - 1), [r.text for r in answers]
    [winner] = [r for r in answers if r.status_code == 200]
    now = await race.client.get(widget, headers=headers)
    assert now.headers["ETag"] == '"3"'
    shown = now.json()
    config = (
        winner.json()["widget"]["config"] if "widget" in winner.json() else winner.json()["config"]
    )
    assert shown["config"] == config
    versions = (await race.client.get(f"{widget}/versions", headers=headers)).json()
    assert [v["number"] for v in versions] == ([1] if shown["published_version"] else [])
