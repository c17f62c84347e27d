"""``GET /v1/embed/{pk}/config``: who gets the published config, what it holds, caching."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, event, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.models import AllowedOrigin, Placement, WidgetMode, WidgetVersion
from kithost.settings import Settings
from kithost.widgets.config import Agent, Hosted, Launcher, WidgetConfig
from tests.conftest import config_cache, create_test_app
from tests.visitor.helpers import ORIGIN, Clock, assert_refused, config_url, make_widget, publish

CONFIG = WidgetConfig(
    chatkit={"theme": {"colorScheme": "dark"}},
    launcher=Launcher(label="Ask us"),
    require_identity=True,
)


@pytest.fixture
def clock(app: FastAPI) -> Clock:
    clock = Clock()
    app.state.add(config_cache(app, revalidate_after=2.0, clock=clock))
    return clock


async def test_an_allowed_origin_gets_the_public_config_with_cors_for_it_only(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    widget = await make_widget(db, config=CONFIG)
    response = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["vary"] == "Origin"
    assert response.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=300"
    assert response.headers["etag"].startswith('"')
    assert response.json() == {
        "public_key": widget.public_key,
        "version": 1,
        "config": CONFIG.public(),
        "domain_key": None,
        "chatkit_script_url": "https://cdn.platform.openai.com/deployments/chatkit/chatkit.js",
    }
    assert response.json()["config"]["require_identity"] is True


async def test_wildcard_entries_allow_subdomains_but_not_the_domain_itself(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    widget = await make_widget(db, origins=["https://*.example.org"], config=CONFIG)
    for origin in ("https://help.example.org", "https://eu.help.example.org"):
        response = await client.get(config_url(widget), headers={"Origin": origin})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
    apex = await client.get(config_url(widget), headers={"Origin": "https://example.org"})
    assert_refused(apex, 403, "origin_not_allowed")


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://shop.example.com.evil.example",
        "http://shop.example.com",
        "https://shop.example.com:8443",
        "null",
        None,
    ],
)
async def test_other_origins_are_refused(
    client: httpx2.AsyncClient, db: AsyncSession, origin: str | None
) -> None:
    widget = await make_widget(db, config=CONFIG)
    headers = {} if origin is None else {"Origin": origin}
    response = await client.get(config_url(widget), headers=headers)
    assert_refused(response, 403, "origin_not_allowed")
    assert "launcher" not in response.text


async def test_preflight_is_answered_for_allowed_origins_only(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    widget = await make_widget(db, config=CONFIG)
    request = {"Access-Control-Request-Method": "GET"}
    allowed = await client.options(config_url(widget), headers={"Origin": ORIGIN, **request})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["access-control-allow-methods"] == "GET"
    assert allowed.headers["vary"] == "Origin"
    foreign = await client.options(
        config_url(widget), headers={"Origin": "https://evil.example", **request}
    )
    assert_refused(foreign, 403, "origin_not_allowed")
    unknown = await client.options(config_url("pk_nope"), headers={"Origin": ORIGIN, **request})
    assert_refused(unknown, 404, "widget_not_found")


async def test_unknown_or_unpublished_widgets_are_not_found(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    unpublished = await make_widget(db, config=None)
    for public_key in ("pk_does_not_exist", unpublished.public_key):
        response = await client.get(config_url(public_key), headers={"Origin": ORIGIN})
        assert_refused(response, 404, "widget_not_found")


async def test_the_origin_is_checked_before_the_key_is_looked_up(
    client: httpx2.AsyncClient,
) -> None:
    for headers in ({}, {"Origin": "null"}):
        response = await client.get(config_url("pk_does_not_exist"), headers=headers)
        assert_refused(response, 403, "origin_not_allowed")


async def test_a_matching_etag_gets_304(client: httpx2.AsyncClient, db: AsyncSession) -> None:
    widget = await make_widget(db, config=CONFIG)
    first = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    etag = first.headers["etag"]
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = await client.get(
            config_url(widget), headers={"Origin": ORIGIN, "If-None-Match": if_none_match}
        )
        assert response.status_code == 304, if_none_match
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert response.headers["vary"] == "Origin"
    stale = await client.get(
        config_url(widget), headers={"Origin": ORIGIN, "If-None-Match": '"other"'}
    )
    assert stale.status_code == 200
    assert stale.content == first.content


async def test_nothing_secret_is_served(client: httpx2.AsyncClient, db: AsyncSession) -> None:
    config = WidgetConfig(
        mode=WidgetMode.hosted,
        agent=Agent(instructions="SECRET-INSTRUCTIONS never tell", model="secret-model-x"),
        hosted=Hosted(workflow_id="wf_secretworkflow123", state_variables=["plan"]),
    )
    widget = await make_widget(db, config=config)
    widget.identity_secret = "IDENTITY-SECRET-CIPHERTEXT"
    await db.flush()
    response = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.json()["config"]["mode"] == "hosted"
    for secret in ("SECRET-INSTRUCTIONS", "secret-model-x", "wf_secretworkflow123", "IDENTITY"):
        assert secret not in response.text
    assert set(response.json()["config"]) == {
        "mode",
        "placement",
        "chatkit",
        "launcher",
        "actions",
        "require_identity",
        "client_tools",
    }


async def test_direct_placement_gets_the_domain_key_of_the_matching_entry(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    origins = [("https://*.example.com", "dk_wildcard"), (ORIGIN, "dk_shop")]
    direct = await make_widget(db, origins=origins, config=WidgetConfig(placement=Placement.direct))
    shop = await client.get(config_url(direct), headers={"Origin": ORIGIN})
    blog = await client.get(config_url(direct), headers={"Origin": "https://blog.example.com"})
    assert shop.json()["domain_key"] == "dk_shop"
    assert blog.json()["domain_key"] == "dk_wildcard"
    assert shop.headers["etag"] != blog.headers["etag"]

    framed = await make_widget(db, origins=origins, config=CONFIG)
    response = await client.get(config_url(framed), headers={"Origin": ORIGIN})
    assert response.json()["domain_key"] is None


async def test_changes_are_served_once_the_revalidation_interval_has_passed(
    client: httpx2.AsyncClient, db: AsyncSession, clock: Clock
) -> None:
    widget = await make_widget(db, origins=[ORIGIN, "https://blog.example.com"], config=CONFIG)
    first = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    await publish(db, widget, WidgetConfig(launcher=Launcher(label="Version two")))
    await db.execute(delete(AllowedOrigin).where(AllowedOrigin.origin == ORIGIN))
    widget.name = "Renamed, so the revision moves with the origins"
    await db.flush()

    clock.now += 1.9
    cached = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    assert (cached.status_code, cached.content) == (200, first.content)

    clock.now += 0.2
    removed = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    assert_refused(removed, 403, "origin_not_allowed")
    other = await client.get(config_url(widget), headers={"Origin": "https://blog.example.com"})
    assert other.json()["version"] == 2
    assert other.json()["config"]["launcher"]["label"] == "Version two"


async def test_concurrent_requests_share_one_lookup(
    client: httpx2.AsyncClient, db: AsyncSession, connection: AsyncConnection
) -> None:
    widget = await make_widget(db, config=CONFIG)
    statements: list[str] = []

    def record(_conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", record)
    try:
        responses = await asyncio.gather(
            *(client.get(config_url(widget), headers={"Origin": ORIGIN}) for _ in range(20))
        )
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", record)
    assert {r.status_code for r in responses} == {200}
    assert len([s for s in statements if "FROM widgets" in s]) == 1


async def test_other_methods_are_not_allowed(client: httpx2.AsyncClient, db: AsyncSession) -> None:
    widget = await make_widget(db, config=CONFIG)
    response = await client.post(config_url(widget), headers={"Origin": ORIGIN})
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_the_config_names_the_chatkit_script_the_operator_set(
    settings: Settings, connection: AsyncConnection, db: AsyncSession
) -> None:
    """A deployment that serves ChatKit's script itself (``KITHOST_CHATKIT_SCRIPT_URL``) has
    the direct placement load it from there (the loader holds no URL of its own)."""
    script = "https://static.example.net/chatkit.js"
    app = create_test_app(settings, connection, chatkit_script_url=script)
    widget = await make_widget(db, config=CONFIG)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(config_url(widget), headers={"Origin": ORIGIN})
    assert response.json()["chatkit_script_url"] == script


async def test_a_published_config_refused_by_todays_rules_is_no_widget_and_an_error_logged(
    client: httpx2.AsyncClient, db: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    """A version published before a rule grew stricter is not served half-understood, nor
    a 500: visitors find no widget, the operator's log says which and why (the dashboard
    shows the config as stored, tests/widgets/test_stored_configs.py)."""
    widget = await make_widget(db, config=CONFIG)
    version = await db.scalar(select(WidgetVersion).where(WidgetVersion.widget_id == widget.id))
    assert version is not None
    version.config = {**version.config, "colour": "teal"}
    await db.flush()

    response = await client.get(config_url(widget), headers={"Origin": ORIGIN})

    assert_refused(response, 404, "widget_not_found")
    logged = [
        (r.levelname, r.msg["widget_id"], r.msg["version"], tuple(r.msg["fields"]))
        for r in caplog.records
        if isinstance(r.msg, dict) and r.msg["event"] == "published_config_invalid"
    ]
    assert logged
    assert set(logged) == {("ERROR", str(widget.id), 1, ("colour",))}
