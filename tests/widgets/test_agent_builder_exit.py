"""After OpenAI's Agent Builder shutdown (2026-11-30): no new hosted widget, hosted ones
flagged, and ``POST …/convert`` turning one into a self-hosted draft that keeps what
carries over and says what does not; visitors see nothing until publish."""

from __future__ import annotations

import uuid

import httpx2
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Widget
from tests.widgets.helpers import (
    HOSTED,
    WIDGETS,
    Acme,
    audit_entries,
    create,
    hosted_widget,
    url,
)


async def published_hosted_widget(client: httpx2.AsyncClient, acme: Acme, db: AsyncSession) -> str:
    """A widget made hosted before the shutdown, published (at revision 3)."""
    widget = await hosted_widget(client, acme, db)
    published = await client.post(widget + "/publish", headers=acme.matching('"2"'))
    assert published.status_code == 200, published.text
    return widget


async def test_no_new_widget_is_hosted(client: httpx2.AsyncClient, acme: Acme) -> None:
    refused = await client.post(
        WIDGETS, json={"name": "Old style", "config": HOSTED}, headers=acme.headers
    )
    assert refused.status_code == 422
    body = refused.json()
    assert body["code"] == "agent_builder_retired"
    assert [e["field"] for e in body["errors"]] == ["config.mode"]
    assert "2026-11-30" in body["detail"]


async def test_hosted_widgets_are_flagged_and_convert_into_a_self_hosted_draft(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    widget = await published_hosted_widget(client, acme, db)
    shown = (await client.get(widget, headers=acme.headers)).json()
    assert shown["attention"] == ["agent_builder_retired"]
    listed = (await client.get(WIDGETS, headers=acme.headers)).json()
    assert [w["attention"] for w in listed] == [["agent_builder_retired"]]

    no_match = await client.post(widget + "/convert", headers=acme.headers)
    assert no_match.status_code == 428
    converted = await client.post(
        widget + "/convert", headers=acme.matching(f'"{shown["revision"]}"')
    )
    assert converted.status_code == 200, converted.text
    answer = converted.json()
    config = answer["widget"]["config"]
    assert (config["mode"], config["hosted"]) == ("self_hosted", None)
    assert answer["widget"]["attention"] == []
    kept = {k: config[k] for k in ("placement", "require_identity")}
    assert kept == {"placement": "direct", "require_identity": True}
    assert config["launcher"]["label"] == "Ask Acme"
    assert config["chatkit"]["theme"] == {"colorScheme": "dark"}
    assert config["chatkit"]["history"] == {"enabled": False}
    assert config["chatkit"]["composer"]["attachments"] == {
        "enabled": True,
        "maxCount": 3,
        "maxSize": {"*": 5 * 1024 * 1024},
    }
    not_carried = [n["setting"] for n in answer["not_carried"]]
    assert "chatkit_configuration.history.recent_threads" in not_carried
    assert "max_requests_per_minute" in not_carried
    assert "workflow wf_68df4b13_acme" in not_carried
    assert any(c.startswith("state_variables") for c in answer["carried"])

    version = (await client.get(widget + "/versions/1", headers=acme.headers)).json()
    assert version["config"]["mode"] == "hosted", "visitors see it only once published"
    assert [e.action for e in await audit_entries(db, acme.tenant, "widget.converted")] == [
        "widget.converted"
    ]
    again = await client.post(
        widget + "/convert", headers=acme.matching(f'"{answer["widget"]["revision"]}"')
    )
    assert (again.status_code, again.json()["code"]) == (409, "not_hosted")


def retired(response: httpx2.Response) -> None:
    """``response`` is the 422 refusing a hosted draft, on ``config.mode``."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["code"], [e["field"] for e in body["errors"]]) == (
        "agent_builder_retired",
        ["config.mode"],
    )


async def test_a_self_hosted_widget_never_becomes_hosted(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    created = await create(client, acme)
    widget = url(created)
    retired(await client.put(widget + "/config", json=HOSTED, headers=acme.matching('"1"')))
    retired(await client.patch(widget, json={"config": HOSTED}, headers=acme.matching('"1"')))
    published = await client.post(widget + "/publish", headers=acme.matching('"1"'))
    assert published.status_code == 200, published.text

    # A draft made hosted before saving checked the mode is not published either.
    stored = await db.get_one(Widget, uuid.UUID(created.json()["id"]))
    stored.draft = {**stored.draft, **HOSTED}
    await db.flush()
    retired(await client.post(widget + "/publish", headers=acme.matching('"3"')))
    versions = await client.get(widget + "/versions", headers=acme.headers)
    assert [v["number"] for v in versions.json()] == [1]


async def test_a_hosted_widget_stays_hosted_until_a_self_hosted_version_is_published(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    widget = await published_hosted_widget(client, acme, db)
    edited = await client.patch(
        widget, json={"config": {"hosted": {"version": "4"}}}, headers=acme.matching('"3"')
    )
    assert edited.status_code == 200, edited.text
    converted = await client.post(widget + "/convert", headers=acme.matching('"4"'))
    assert converted.status_code == 200, converted.text
    undone = await client.patch(widget, json={"config": HOSTED}, headers=acme.matching('"5"'))
    assert (undone.status_code, undone.json()["config"]["mode"]) == (200, "hosted")
    again = await client.post(widget + "/publish", headers=acme.matching('"6"'))
    assert again.status_code == 200, again.text

    converted = await client.post(widget + "/convert", headers=acme.matching('"7"'))
    assert converted.status_code == 200, converted.text
    self_hosted = await client.post(widget + "/publish", headers=acme.matching('"8"'))
    assert self_hosted.json()["published_version"] == 3
    retired(await client.post(widget + "/versions/2/restore", headers=acme.matching('"9"')))
    retired(await client.patch(widget, json={"config": HOSTED}, headers=acme.matching('"9"')))
