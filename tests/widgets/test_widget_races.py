"""Editors changing one widget at once, through the app on connections of its own
(``tests.races``): each request a transaction of its own (at once on PostgreSQL, one after
the other on SQLite). Every change needs the widget's ETag, and of the changes sent with the
same one exactly one wins; none answers 500 and nothing is numbered twice."""

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

AT_ONCE = 8


@pytest.fixture
async def race(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RacingApp]:
    async with racing_app(settings, monkeypatch) as racing:
        yield racing


async def new_widget(race: RacingApp) -> tuple[str, dict[str, str]]:
    """A new tenant's new widget (at revision 1) and its owner's headers."""
    async with race.arranging() as session:
        tenant = await race.tenant(session)
        user = (await create_user(session, CLI, race.email("owner"), password=PASSWORD)).user
        session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=Role.owner))
        headers = (await login(race.app, session, user)).headers
    widgets = f"/api/v1/tenants/{tenant.slug}/widgets"
    created = await race.client.post(widgets, json={"name": "Shop chat"}, headers=headers)
    assert created.status_code == 201, created.text
    return f"{widgets}/{created.json()['id']}", headers


async def owner_widget(race: RacingApp) -> tuple[str, dict[str, str]]:
    """A new tenant's widget (published once, then its draft changed: at revision 3) and its
    owner's headers."""
    widget, headers = await new_widget(race)
    published = await race.client.post(f"{widget}/publish", headers={**headers, "If-Match": '"1"'})
    assert published.status_code == 200, published.text
    edited = await race.client.patch(
        widget,
        json={"config": {"launcher": {"label": "Draft"}}},
        headers={**headers, "If-Match": '"2"'},
    )
    assert edited.status_code == 200, edited.text
    return widget, headers


def statuses(responses: list[httpx2.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


async def test_of_editors_changing_one_revision_at_once_one_wins(race: RacingApp) -> None:
    widget, headers = await owner_widget(race)
    matching = {**headers, "If-Match": '"3"'}
    await race.warm(AT_ONCE)

    async def change(n: int) -> httpx2.Response:
        if n % 4 == 0:
            return await race.client.post(f"{widget}/publish", headers=matching)
        if n % 4 == 1:
            return await race.client.post(f"{widget}/versions/1/restore", headers=matching)
        label = {"launcher": {"label": f"Editor {n}"}}
        if n % 4 == 2:
            return await race.client.patch(widget, json={"config": label}, headers=matching)
        return await race.client.put(f"{widget}/config", json=label, headers=matching)

    answers = await at_once(AT_ONCE, change)
    assert statuses(answers) == [200] + [412] * (AT_ONCE - 1), [r.text for r in answers]
    [winner] = [r for r in answers if r.status_code == 200]
    now = await race.client.get(widget, headers=headers)
    assert now.json() == winner.json()
    assert now.headers["ETag"] == '"4"'
    versions = await race.client.get(f"{widget}/versions", headers=headers)
    assert [v["number"] for v in versions.json()] == list(
        range(now.json()["published_version"], 0, -1)
    )


async def test_publishes_at_once_with_each_new_etag_number_versions_without_gaps(
    race: RacingApp,
) -> None:
    widget, headers = await owner_widget(race)
    await race.warm(AT_ONCE)

    async def publish(_: int) -> list[int]:
        """Publish three times, each with the ETag last seen, again after a 412."""
        codes: list[int] = []
        while codes.count(200) < 3:
            etag = (await race.client.get(widget, headers=headers)).headers["ETag"]
            response = await race.client.post(
                f"{widget}/publish", headers={**headers, "If-Match": etag}
            )
            codes.append(response.status_code)
        return codes

    codes = [c for run in await at_once(AT_ONCE, publish) for c in run]
    assert set(codes) <= {200, 412}
    versions = await race.client.get(f"{widget}/versions", headers=headers)
    total = 1 + 3 * AT_ONCE
    assert [v["number"] for v in versions.json()] == list(range(total, 0, -1))


async def test_origins_added_at_once_are_each_added_or_refused_412(race: RacingApp) -> None:
    widget, headers = await owner_widget(race)
    await race.warm(AT_ONCE)

    async def add(n: int) -> httpx2.Response:
        origin = f"https://shop{n % 4}.example.com"
        return await race.client.post(f"{widget}/origins", json={"origin": origin}, headers=headers)

    answers = await at_once(AT_ONCE, add)
    assert set(statuses(answers)) <= {201, 409, 412}, [r.text for r in answers]
    added = sorted(r.json()["origin"] for r in answers if r.status_code == 201)
    listed = await race.client.get(f"{widget}/origins", headers=headers)
    assert sorted(o["origin"] for o in listed.json()) == added
    assert len(set(added)) == len(added)


async def test_a_widget_deleted_while_it_is_changed_is_gone_or_changed_never_500(
    race: RacingApp,
) -> None:
    widget, headers = await owner_widget(race)
    matching = {**headers, "If-Match": '"3"'}
    await race.warm(AT_ONCE)

    async def change(n: int) -> httpx2.Response:
        if n == 0:
            return await race.client.delete(widget, headers=headers)
        if n % 3 == 0:
            return await race.client.post(f"{widget}/publish", headers=matching)
        if n % 3 == 1:
            return await race.client.post(f"{widget}/versions/1/restore", headers=matching)
        origin = {"origin": f"https://shop{n}.example.com"}
        return await race.client.post(f"{widget}/origins", json=origin, headers=headers)

    answers = await at_once(AT_ONCE, change)
    assert answers[0].status_code in {204, 412}, answers[0].text
    assert {r.status_code for r in answers[1:]} <= {200, 201, 404, 412}, [r.text for r in answers]
    after = await race.client.get(widget, headers=headers)
    assert after.status_code == (404 if answers[0].status_code == 204 else 200)


async def test_of_converting_and_publishing_a_hosted_widget_at_once_one_wins(
    race: RacingApp,
) -> None:
    widget, headers = await new_widget(race)
    async with race.arranging() as session:
        stored = await session.get_one(Widget, uuid.UUID(widget.rsplit("/", 1)[1]))
        set_draft(stored, {**stored.draft, **HOSTED})
    matching = {**headers, "If-Match": '"2"'}
    await race.warm(AT_ONCE)

    async def act(n: int) -> httpx2.Response:
        return await race.client.post(
            f"{widget}/{'publish' if n % 2 else 'convert'}", headers=matching
        )

    answers = await at_once(AT_ONCE, act)

    assert statuses(answers) == [200] + [412] * (AT_ONCE - 1), [r.text for r in answers]
    [winner] = [r for r in answers if r.status_code == 200]
    now = await race.client.get(widget, headers=headers)
    assert now.headers["ETag"] == '"3"'
    assert now.json() == winner.json().get("widget", winner.json())
