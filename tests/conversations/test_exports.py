"""Large exports through a real ``kithost worker`` process: requested over the API (audited),
written by the worker into the blob storage, downloaded from a signed link that needs no
credentials, expires, is bound to its tenant and export, and whose every use is audited.
The worker reads committed rows, so this test commits, in tenants deleted afterwards."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.chat.runtime import runtime
from kithost.conversations import exports
from kithost.db import session_scope
from kithost.models import AuditLogEntry, ConversationExport, Tenant
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.widgets.service import create_widget
from tests.conftest import operator_sessions, state_of
from tests.conversations.helpers import ANONYMOUS, conversation
from tests.factories import Credentials, bare_tenant, client_token
from tests.workers import committing_api, own_queue, until, worker_running

pytestmark = pytest.mark.worker
PREFIX = "cx-worker"


@pytest.fixture(scope="module")
def worker_settings(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """One worker for the module's tests (each starts its own tenants)."""
    own = own_queue(settings, "exports", tmp_path_factory.mktemp("exports"))
    with worker_running(own):
        yield own


@pytest.fixture
async def api(worker_settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx2.AsyncClient]]:
    async with committing_api(worker_settings, PREFIX) as api:
        yield api


async def chats(app: FastAPI) -> tuple[str, Credentials, dict[str, str]]:
    """A tenant with three conversations (one of an anonymous visitor) and a reader; another
    tenant with one. The first's slug, its reader and the threads by name."""
    async with session_scope(operator_sessions(app)) as session:
        tenant, other = await bare_tenant(session, PREFIX), await bare_tenant(session, PREFIX)
        shop = await create_widget(session, CLI, tenant, name="Shop")
        theirs = await create_widget(session, CLI, other, name="Theirs")
        threads = {
            "tent": await conversation(session, shop, "u:42", ["My tent leaks", "Sorry!"]),
            "boots": await conversation(session, shop, "u:43", ["=SUM(A1)", "Boots are fine"]),
            "anonymous": await conversation(session, shop, ANONYMOUS, ["Hello", "Hi"]),
            "theirs": await conversation(session, theirs, "u:1", ["Not acme's"]),
        }
        reader = await client_token(app, session, tenant, [Scope.conversations_read])
        return tenant.slug, reader, threads


async def ready(client: httpx2.AsyncClient, url: str, reader: Credentials) -> dict[str, Any]:
    """The export at ``url`` once the worker has written it."""
    shown: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal shown
        shown = (await client.get(url, headers=reader.headers)).json()
        return bool(shown["status"] == "ready")

    await until(done)
    return shown


async def test_a_worker_writes_an_export_downloaded_from_a_signed_link(
    api: tuple[FastAPI, httpx2.AsyncClient],
) -> None:
    app, client = api
    slug, reader, threads = await chats(app)
    base = f"/api/v1/tenants/{slug}/conversations/exports"
    requested = await client.post(base, json={"format": "jsonl"}, headers=reader.headers)
    assert requested.status_code == 202, requested.text
    assert (requested.json()["status"], requested.json()["download_url"]) == ("pending", None)
    export = await ready(client, f"{base}/{requested.json()['id']}", reader)
    assert export["finished_at"] is not None

    link = export["download_url"]
    assert link.startswith("http://testserver/api/v1/conversation-exports/ex_")
    downloaded = await client.get(link)  # no credentials: the link is the proof
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.headers["content-type"].startswith("application/x-ndjson")
    assert len(downloaded.content) == export["size_bytes"]
    lines = [json.loads(line) for line in downloaded.text.splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(
        threads[name] for name in ("tent", "boots", "anonymous")
    ), "the tenant's conversations only"
    assert ANONYMOUS not in downloaded.text
    tent = next(line for line in lines if line["id"] == threads["tent"])
    assert [item["text"] for item in tent["items"]] == ["My tent leaks", "Sorry!"]

    async with session_scope(operator_sessions(app)) as session:
        row = await session.get(ConversationExport, uuid.UUID(export["id"]))
        assert row is not None
        entries = (
            await session.scalars(
                select(AuditLogEntry).where(AuditLogEntry.tenant_id == row.tenant_id)
            )
        ).all()
        actions = {(e.action, e.actor_type, str(e.target_id)) for e in entries}
        assert ("conversations.exported", "client", export["id"]) in actions
        assert ("conversations.export_downloaded", "client", export["id"]) in actions
        earlier = utcnow() - timedelta(minutes=11)
        expired = exports.shown(app.state.settings, row, CLI, str, earlier).download_url
    assert expired is not None
    gone = await client.get(f"/api/v1/conversation-exports/{expired}")
    assert (gone.status_code, gone.json()["code"]) == (410, "download_link_expired")
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    refused = await client.get(forged)
    assert (refused.status_code, refused.json()["code"]) == (404, "download_not_found")


async def test_a_csv_export_takes_the_lists_filters(
    api: tuple[FastAPI, httpx2.AsyncClient],
) -> None:
    app, client = api
    slug, reader, threads = await chats(app)
    base = f"/api/v1/tenants/{slug}/conversations/exports"
    body = {"format": "csv", "filters": {"end_user": "u:43"}}
    requested = await client.post(base, json=body, headers=reader.headers)
    assert requested.status_code == 202, requested.text
    assert requested.json()["filters"] == {"end_user": "u:43"}
    export = await ready(client, f"{base}/{requested.json()['id']}", reader)
    downloaded = await client.get(export["download_url"])
    assert downloaded.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(downloaded.text)))
    assert [(r["thread_id"], r["text"]) for r in rows] == [
        (threads["boots"], "'=SUM(A1)"),
        (threads["boots"], "Boots are fine"),
    ]

    other = await client.get(
        f"/api/v1/tenants/{slug}/conversations/exports/{uuid.uuid4()}", headers=reader.headers
    )
    assert (other.status_code, other.json()["code"]) == (404, "export_not_found")
    for wrong, field in (
        ({"format": "xlsx"}, "format"),
        ({"format": "csv", "filters": {"q": "x"}}, "filters.q"),
        ({"format": "csv", "filters": {"before": "thr_1"}}, "filters.before"),
    ):
        refused = await client.post(base, json=wrong, headers=reader.headers)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]


@pytest.mark.parametrize("by", ["staff", "the end user's erasure"])
async def test_an_export_holding_a_deleted_conversation_is_gone(
    api: tuple[FastAPI, httpx2.AsyncClient], by: str
) -> None:
    """The worker deletes its file after the deletion's commit, before anything reads the
    export."""
    app, client = api
    slug, reader, threads = await chats(app)
    async with session_scope(operator_sessions(app)) as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        scopes = [Scope.conversations_write, Scope.members_write]
        writer = await client_token(app, session, tenant, scopes)
    base = f"/api/v1/tenants/{slug}/conversations"
    requested = await client.post(f"{base}/exports", json={"format": "csv"}, headers=reader.headers)
    export = await ready(client, f"{base}/exports/{requested.json()['id']}", reader)
    assert threads["tent"] in (await client.get(export["download_url"])).text

    if by == "staff":
        deleted = await client.delete(f"{base}/{threads['tent']}", headers=writer.headers)
    else:
        deleted = await client.post(
            f"/api/v1/tenants/{slug}/analytics/end-user-deletions",
            json={"end_user": "u:42"},
            headers=writer.headers,
        )
    assert deleted.is_success, deleted.text
    storage = runtime(state_of(app)).storage

    async def file_gone() -> bool:
        async with session_scope(operator_sessions(app)) as session:
            row = await session.get(ConversationExport, uuid.UUID(export["id"]))
        assert row is not None
        return await storage.get(exports.blob_key(row)) is None

    await until(file_gone)
    refused = await client.get(export["download_url"])
    assert (refused.status_code, refused.json()["code"]) == (410, "export_invalidated")
    shown = await client.get(f"{base}/exports/{export['id']}", headers=reader.headers)
    assert (shown.json()["status"], shown.json()["download_url"]) == ("invalidated", None)
