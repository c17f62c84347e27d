"""Which key goes where: a URL a tenant typed (``agent.base_url``) gets only the widget's own
model key set for that very URL — never the platform's key, never the tenant's OpenAI key,
never a model key set for another endpoint, never anything from the process's environment —
and only if Kithost may connect to its address. The tenant's servers are more fakes on
loopback that record what they receive."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx2
import pytest
from chatkit.types import ErrorEvent
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.kit.outbound import origin_of
from kithost.models import Role, Tenant, Widget
from kithost.settings import Settings
from tests.chat.helpers import (
    SentTasks,
    assert_problem,
    chat_config,
    deltas,
    publish_unchecked,
    visitor,
)
from tests.conftest import config_cache, create_test_app
from tests.factories import Credentials, login, make_member
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI
from tests.visitor.helpers import make_widget
from tests.widgets.helpers import audit_entries

PLATFORM_KEY = "sk-platform-" + "p" * 32
TENANT_KEY = "sk-tenant-" + "t" * 32
MODEL_KEY = "gw-model-key-" + "m" * 20
EDITORS_KEY = "gw-editors-key-" + "e" * 20
NOT_SET_UP = [("custom", "This chat is not set up to answer yet.")]
SET_AGAIN = [
    {
        "field": "config.agent.base_url",
        "message": "the widget's model key was set for another endpoint; set it again for "
        "this base_url (PUT …/model-key) to send it here; no other key is sent there",
        "type": "model_key_required",
    }
]


@pytest.fixture(scope="module")
def tenant_server() -> Iterator[FakeOpenAI]:
    """The server a tenant points its widget at; it accepts the widget's model key."""
    with FakeOpenAI(api_key=MODEL_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def editors_server() -> Iterator[FakeOpenAI]:
    """A server an editor controls; it accepts only the editor's own key."""
    with FakeOpenAI(api_key=EDITORS_KEY) as server:
        yield server


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection, fake_openai: FakeOpenAI) -> FastAPI:
    """A deployment with a platform key, for the operator's endpoint (the shared fake)."""
    app = create_test_app(
        settings,
        connection,
        openai_api_key=SecretStr(PLATFORM_KEY),
        openai_base_url=fake_openai.base_url,
    )
    app.state.add(config_cache(app, revalidate_after=0))
    return app


@pytest.fixture(autouse=True)
def _fresh(tenant_server: FakeOpenAI, editors_server: FakeOpenAI) -> None:
    tenant_server.reset()
    editors_server.reset()


async def editor_of(app: FastAPI, db: AsyncSession, widget: Widget) -> tuple[Tenant, Credentials]:
    """The widget's tenant and one of its editors, signed in."""
    tenant = await db.get(Tenant, widget.tenant_id)
    assert tenant is not None
    return tenant, await login(app, db, await make_member(db, tenant, Role.editor))


def errors(events: Sequence[object]) -> list[tuple[str | None, str | None]]:
    return [(e.code, e.message) for e in events if isinstance(e, ErrorEvent)]


async def if_match(client: httpx2.AsyncClient, url: str, editor: Credentials) -> dict[str, str]:
    """The editor's headers with the widget's current ETag."""
    etag = (await client.get(url, headers=editor.headers)).headers["etag"]
    return {**editor.headers, "If-Match": etag}


async def test_a_base_url_without_the_widgets_own_key_gets_no_key_at_all(
    http: httpx2.AsyncClient,
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tenant_server: FakeOpenAI,
) -> None:
    """The attack: a tenant without a key of its own points its widget at its server and
    sends a message. Neither the platform's key nor, once set, the tenant's OpenAI key (write-
    only: an editor must not read it this way) goes there; nothing is called."""
    widget = await make_widget(db)
    await publish_unchecked(db, widget, chat_config(tenant_server))
    tenant, editor = await editor_of(app, db, widget)
    alice = await visitor(http, app, db, widget)

    assert errors(await alice.send("Hello?")) == NOT_SET_UP
    key_url = f"/api/v1/tenants/{tenant.slug}/openai-key"
    put = await client.put(key_url, json={"api_key": TENANT_KEY}, headers=editor.headers)
    assert put.status_code == 200, put.text
    assert errors(await alice.send("Hello again?")) == NOT_SET_UP
    assert tenant_server.requests == []
    assert fake_openai.requests == []


async def test_the_widgets_model_key_is_the_only_key_its_base_url_gets(
    http: httpx2.AsyncClient,
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tenant_server: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key is set for the URL first (``base_url``: the draft may only name a URL its key
    is for), then the draft names it."""
    for name, value in {
        "OPENAI_API_KEY": "sk-ambient-key",
        "OPENAI_ORG_ID": "org-operator",
        "OPENAI_CUSTOM_HEADERS": "Authorization: Bearer sk-ambient-header",
    }.items():
        monkeypatch.setenv(name, value)
    widget = await make_widget(db)
    tenant, editor = await editor_of(app, db, widget)
    url = f"/api/v1/tenants/{tenant.slug}/widgets/{widget.id}"
    agent = {"config": {"agent": {"base_url": tenant_server.base_url}}}

    refused = await client.patch(url, json=agent, headers=await if_match(client, url, editor))
    problem = assert_problem(refused, 422, "model_key_required")
    assert problem["errors"] == [
        {
            "field": "config.agent.base_url",
            "message": "an agent with its own base_url needs the widget's model key for it "
            "(PUT …/model-key first); no other key is sent there",
            "type": "model_key_required",
        }
    ]
    key = {"api_key": MODEL_KEY, "base_url": tenant_server.base_url}
    put = await client.put(url + "/model-key", json=key, headers=editor.headers)
    assert put.status_code == 200, put.text
    revision = put.json()["revision"]
    assert put.json() == {
        "has_model_key": True,
        "base_url": tenant_server.base_url,
        "revision": revision,
    }
    read = await client.get(url, headers=editor.headers)
    assert read.json()["has_model_key"] is True
    assert MODEL_KEY not in read.text
    [entry] = await audit_entries(db, tenant, "widget.model_key_set")
    assert entry.data == {
        "before": {"has_model_key": False, "model_key_endpoint": None, "revision": revision - 1},
        "after": {
            "has_model_key": True,
            "model_key_endpoint": origin_of(tenant_server.base_url),
            "revision": revision,
        },
    }

    patched = await client.patch(url, json=agent, headers=await if_match(client, url, editor))
    assert patched.status_code == 200, patched.text
    published = await client.post(url + "/publish", headers=await if_match(client, url, editor))
    assert published.status_code == 200, published.text
    alice = await visitor(http, app, db, widget)
    assert "".join(deltas(await alice.send("Hello?"))) == DEFAULT_REPLY_TEXT
    [call] = tenant_server.requests
    assert call.headers["authorization"] == f"Bearer {MODEL_KEY}"
    assert "openai-organization" not in call.headers
    assert fake_openai.requests == []

    removed = await client.delete(url + "/model-key", headers=editor.headers)
    assert removed.status_code == 204
    assert (await client.get(url, headers=editor.headers)).json()["has_model_key"] is False
    assert errors(await alice.send("And now?")) == NOT_SET_UP
    assert len(tenant_server.requests) == 1


async def test_a_model_at_an_address_kithost_may_not_reach_is_refused(
    http: httpx2.AsyncClient,
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    tenant_server: FakeOpenAI,
    sent_tasks: SentTasks,
) -> None:
    """``0.0.0.0`` reaches this machine's own services: refused when saved (422 naming the
    field), and at run time for a version saved before (a clear error for the visitor, the
    reason for the tenant), without any connection."""
    widget = await make_widget(db)
    widget.model_key = app.state.secret_box.encrypt(MODEL_KEY)
    tenant, editor = await editor_of(app, db, widget)
    url = f"/api/v1/tenants/{tenant.slug}/widgets/{widget.id}"
    port = tenant_server.base_url.rsplit(":", 1)[1].split("/")[0]
    unspecified = f"http://0.0.0.0:{port}/v1"
    for base_url, reason in [
        (unspecified, "unspecified"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://[::ffff:10.0.0.1]/v1", "private"),
    ]:
        body = {"config": {"agent": {"base_url": base_url}}}
        response = await client.patch(url, json=body, headers=await if_match(client, url, editor))
        problem = assert_problem(response, 422, "validation_failed")
        assert problem["errors"] == [
            {
                "field": "config.agent.base_url",
                "message": f"Kithost may not connect to this address: {reason}",
                "type": "outbound_refused",
            }
        ]

    widget.model_key_base_url = unspecified  # as a key set for it before the check was
    await publish_unchecked(db, widget, chat_config(tenant_server, agent={"base_url": unspecified}))
    alice = await visitor(http, app, db, widget)
    events = await alice.send("Hello?")
    assert errors(events) == [
        ("custom", "This chat's model is at an address Kithost may not connect to.")
    ]
    assert tenant_server.requests == []
    [failed] = [f for f in await sent_tasks.facts() if f["name"] == "server.response.failed"]
    assert failed["data"]["error"] == (
        "outbound_refused: 0.0.0.0: unspecified, not a public address"
    )


async def test_a_model_key_goes_only_to_the_endpoint_it_was_set_for(
    http: httpx2.AsyncClient,
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tenant_server: FakeOpenAI,
    editors_server: FakeOpenAI,
) -> None:
    """The attack: an owner sets the key for the tenant's model; an editor points the agent
    at a server of their own and chats (a preview runs the draft, visitors a version). The
    editor's URL is refused when saved or restored, gets no key when an older version names
    it, and gets a key only once one is set for it — never the owner's."""
    widget = await make_widget(db)
    tenant, editor = await editor_of(app, db, widget)
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    url = f"/api/v1/tenants/{tenant.slug}/widgets/{widget.id}"
    owners = {"api_key": MODEL_KEY, "base_url": tenant_server.base_url}
    assert (await client.put(url + "/model-key", json=owners, headers=owner.headers)).is_success
    agent = {"config": {"agent": {"base_url": tenant_server.base_url}}}
    saved = await client.patch(url, json=agent, headers=await if_match(client, url, owner))
    assert saved.status_code == 200, saved.text
    published = await client.post(url + "/publish", headers=await if_match(client, url, owner))
    assert published.status_code == 200, published.text
    again = await client.put(url + "/model-key", json={"api_key": MODEL_KEY}, headers=owner.headers)
    assert again.json()["base_url"] == tenant_server.base_url, "the draft's, by default"

    theirs = {"agent": {"base_url": editors_server.base_url}}
    for method, path, body in [
        ("PATCH", url, {"config": theirs}),
        ("PUT", url + "/config", {**published.json()["config"], **theirs}),
    ]:
        refused = await client.request(
            method, path, json=body, headers=await if_match(client, url, editor)
        )
        assert assert_problem(refused, 422, "model_key_required")["errors"] == SET_AGAIN
    preview = await client.post(url + "/preview", headers=editor.headers)
    assert preview.status_code == 201, preview.text
    dashboard = app.state.settings.base_url  # a preview's only origin: Kithost's own
    staff = await visitor(
        http, app, db, widget, origin=dashboard, public_key=preview.json()["public_key"]
    )
    assert "".join(deltas(await staff.send("Draft?"))) == DEFAULT_REPLY_TEXT

    # A version saved before keys named their endpoint, naming the editor's server.
    await db.refresh(widget)
    await publish_unchecked(db, widget, chat_config(editors_server))
    alice = await visitor(http, app, db, widget)
    assert errors(await alice.send("Hello?")) == NOT_SET_UP
    restore = url + f"/versions/{widget.published_version}/restore"
    refused = await client.post(restore, headers=await if_match(client, url, editor))
    assert assert_problem(refused, 422, "model_key_required")["errors"] == SET_AGAIN
    assert editors_server.requests == []
    [previewed] = tenant_server.requests
    assert previewed.headers["authorization"] == f"Bearer {MODEL_KEY}"

    # Set again for the editor's server: sent there, and the owner's endpoint gets it no more.
    editors = {"api_key": EDITORS_KEY, "base_url": editors_server.base_url}
    put = await client.put(url + "/model-key", json=editors, headers=editor.headers)
    assert put.json()["base_url"] == editors_server.base_url
    assert "".join(deltas(await alice.send("And now?"))) == DEFAULT_REPLY_TEXT
    [call] = editors_server.requests
    assert call.headers["authorization"] == f"Bearer {EDITORS_KEY}"
    assert errors(await staff.send("Draft again?")) == NOT_SET_UP
    refused = await client.post(url + "/publish", headers=await if_match(client, url, editor))
    assert_problem(refused, 422, "model_key_required")
    assert len(tenant_server.requests) == 1
    assert fake_openai.requests == []


async def test_the_operators_endpoint_gets_a_model_key_only_if_it_was_set_for_it(
    http: httpx2.AsyncClient,
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tenant_server: FakeOpenAI,
) -> None:
    """An agent without a ``base_url`` is answered as before (the tenant's OpenAI key, else
    the platform's), or with a model key set while the draft named no endpoint; a key set for
    a URL stays there. Such a key cannot follow the agent to a URL saved later either."""
    widget = await make_widget(db)
    tenant, editor = await editor_of(app, db, widget)
    url = f"/api/v1/tenants/{tenant.slug}/widgets/{widget.id}"
    published = await client.post(url + "/publish", headers=await if_match(client, url, editor))
    assert published.status_code == 200, published.text
    alice = await visitor(http, app, db, widget)

    async def key_sent() -> str:
        fake_openai.reset()
        await alice.send("Hello?")
        [call] = fake_openai.requests
        return call.headers["authorization"]

    assert await key_sent() == f"Bearer {PLATFORM_KEY}"
    key_url = f"/api/v1/tenants/{tenant.slug}/openai-key"
    tenants = await client.put(key_url, json={"api_key": TENANT_KEY}, headers=editor.headers)
    assert tenants.status_code == 200, tenants.text
    assert await key_sent() == f"Bearer {TENANT_KEY}"

    elsewhere = {"api_key": MODEL_KEY, "base_url": tenant_server.base_url}
    put = await client.put(url + "/model-key", json=elsewhere, headers=editor.headers)
    assert put.status_code == 200, put.text
    assert await key_sent() == f"Bearer {TENANT_KEY}"

    put = await client.put(url + "/model-key", json={"api_key": MODEL_KEY}, headers=editor.headers)
    assert put.json()["base_url"] is None
    assert await key_sent() == f"Bearer {MODEL_KEY}"
    agent = {"config": {"agent": {"base_url": tenant_server.base_url}}}
    refused = await client.patch(url, json=agent, headers=await if_match(client, url, editor))
    assert assert_problem(refused, 422, "model_key_required")["errors"] == SET_AGAIN
    assert tenant_server.requests == []


async def test_a_key_stored_before_keys_named_their_endpoint_goes_only_to_the_recorded_one(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    tenant_server: FakeOpenAI,
    editors_server: FakeOpenAI,
) -> None:
    """A key encrypted alone (before it was sealed with its endpoint) is for the endpoint
    the migration recorded beside it: a version naming another one, published before the
    upgrade, gets no key when it runs."""
    widget = await make_widget(db)
    widget.model_key = app.state.secret_box.encrypt(MODEL_KEY)
    widget.model_key_base_url = tenant_server.base_url
    await publish_unchecked(db, widget, chat_config(editors_server))
    alice = await visitor(http, app, db, widget)
    assert errors(await alice.send("Hello?")) == NOT_SET_UP
    assert editors_server.requests == []

    await publish_unchecked(db, widget, chat_config(tenant_server))
    bob = await visitor(http, app, db, widget)
    assert "".join(deltas(await bob.send("Hello?"))) == DEFAULT_REPLY_TEXT
    [call] = tenant_server.requests
    assert call.headers["authorization"] == f"Bearer {MODEL_KEY}"
