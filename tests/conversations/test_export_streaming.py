"""An export's task writes as it reads: a page of conversations and a page of items at a time,
however long a conversation is, with every item of every conversation in order."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.chat.runtime import runtime
from kithost.conversations import exports, repository, service
from kithost.models import ChatItem, ChatThread, ConversationExport, Role, Tenant
from kithost.models.base import utcnow
from kithost.widgets.service import create_widget
from tests.conftest import state_of
from tests.factories import Credentials, login, make_member, make_tenant
from tests.workers import RecordedTasks

TEXT = "How long does shipping to Norway take for a tent? " * 30  # 1.5 KB


async def chats(
    app: FastAPI, db: AsyncSession, lengths: Sequence[int]
) -> tuple[Tenant, Credentials, list[tuple[str, list[str]]]]:
    """A tenant with a conversation of each of ``lengths`` items (the first last active),
    and its owner: the threads with their items' ids, in the export's order."""
    tenant = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    widget = await create_widget(db, CLI, tenant, name="Shop")
    start = utcnow() - timedelta(days=1)
    made: list[tuple[str, list[str]]] = []
    threads: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    owned = {"tenant_id": tenant.id, "widget_id": widget.id, "end_user_id": "u:1"}
    for number, length in enumerate(lengths):
        thread_id = f"thr_{uuid.uuid4().hex}"
        at = start - timedelta(minutes=number)
        threads.append(
            {
                "id": thread_id,
                "created_at": at,
                "updated_at": at,
                "payload": {},
                "payload_version": 1,
            }
            | owned
        )
        ids = []
        for index in range(length):
            kind = ("user_message", "assistant_message")[index % 2]
            # Some items share a time: the order is then the id's.
            ids.append(f"msg_{uuid.uuid4().hex}")
            items.append(
                {
                    "id": ids[-1],
                    "thread_id": thread_id,
                    "kind": kind,
                    "created_at": at + timedelta(seconds=index // 2),
                    "payload_version": 1,
                    "payload": {"type": kind, "content": [{"type": "input_text", "text": TEXT}]},
                }
                | owned
            )
        made.append((thread_id, ids))
    await db.execute(insert(ChatThread), threads)
    for start_at in range(0, len(items), 1000):
        await db.execute(insert(ChatItem), items[start_at : start_at + 1000])
    await db.flush()
    return tenant, owner, [(t, sorted(ids, key=_order(items))) for t, ids in made]


def _order(items: list[dict[str, Any]]) -> Any:
    times = {item["id"]: item["created_at"] for item in items}
    return lambda item_id: (times[item_id], item_id)


async def exported(
    app: FastAPI, client: httpx2.AsyncClient, owner: Credentials, tenant: Tenant, format: str
) -> str:
    """An export written by the task's work, run here, as downloaded."""
    answer = await client.post(
        "/api/v1/tenants/acme/conversations/exports", json={"format": format}, headers=owner.headers
    )
    assert answer.status_code == 202, answer.text
    export_id = uuid.UUID(answer.json()["id"])
    storage, keys = runtime(state_of(app)).storage, app.state.settings.keys()
    assert await exports.write(app.state.sessionmaker, storage, keys, tenant.id, export_id)
    shown = await client.get(
        f"/api/v1/tenants/acme/conversations/exports/{export_id}", headers=owner.headers
    )
    downloaded = await client.get(shown.json()["download_url"])
    assert downloaded.status_code == 200
    await storage.delete([f"{tenant.id}/exports/{export_id}.{format}"])
    return downloaded.text


async def test_an_export_reads_conversations_and_items_in_pages_and_writes_them_all_in_order(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.state.celery, "send_task", RecordedTasks().record)
    monkeypatch.setattr(service, "EXPORT_PAGE", 3)
    monkeypatch.setattr(service, "ITEM_PAGE", 9)  # the first 3 of each with its page
    tenant, owner, made = await chats(app, db, [0, 2, 3, 4, 10, 1, 25, 9])
    reads: list[tuple[int, int]] = []  # (rows asked for, rows read)
    first_items, items_after = repository.first_items, repository.items_after

    async def first(
        session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[str], limit: int
    ) -> Sequence[ChatItem]:
        found = await first_items(session, tenant_id, ids, limit)
        reads.append((limit * len(ids), len(found)))
        return found

    async def after(
        session: AsyncSession, tenant_id: uuid.UUID, thread: str, at: Any, limit: int
    ) -> Sequence[ChatItem]:
        found = await items_after(session, tenant_id, thread, at, limit)
        reads.append((limit, len(found)))
        return found

    monkeypatch.setattr(repository, "first_items", first)
    monkeypatch.setattr(repository, "items_after", after)

    lines = (await exported(app, client, owner, tenant, "jsonl")).splitlines(keepends=True)
    keys = app.state.settings.keys()
    expected = []
    for thread_id, _ids in made:
        found = await service.latest_transcript(db, tenant.id, thread_id, keys, 1000)
        assert found is not None
        expected.append(found[0].model_dump_json() + "\n")
    assert lines == expected, "each line is the conversation's transcript, in the list's order"
    assert [[i["id"] for i in json.loads(line)["items"]] for line in lines] == [
        ids for _thread, ids in made
    ]
    assert reads == [
        (9, 5),  # 0, 2, 3: the first 3 of each
        (9, 0),  # the 3rd may have more
        (9, 7),  # 4, 10, 1
        (9, 1),
        (9, 7),
        (6, 6),  # 25, 9
        (9, 9),
        (9, 9),
        (9, 4),
        (9, 6),
    ], "a page of conversations and a page of items at a time"

    rows = list(csv.DictReader(io.StringIO(await exported(app, client, owner, tenant, "csv"))))
    assert [(r["thread_id"], r["item_id"]) for r in rows] == [
        (thread_id, item_id) for thread_id, ids in made for item_id in ids
    ]
    assert {r["text"] for r in rows} == {TEXT}


async def test_a_long_conversation_is_exported_in_little_memory(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.state.celery, "send_task", RecordedTasks().record)
    tenant, owner, made = await chats(app, db, [6_000, 3])
    answer = await client.post(
        "/api/v1/tenants/acme/conversations/exports",
        json={"format": "jsonl"},
        headers=owner.headers,
    )
    export_id = uuid.UUID(answer.json()["id"])
    storage, keys = runtime(state_of(app)).storage, app.state.settings.keys()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert await exports.write(app.state.sessionmaker, storage, keys, tenant.id, export_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    export = await db.get(ConversationExport, export_id)
    assert export is not None
    assert export.size_bytes is not None
    text = await storage.get(exports.blob_key(export))
    await storage.delete([exports.blob_key(export)])
    assert text is not None
    lines = [json.loads(line) for line in text.splitlines()]
    assert [[i["id"] for i in line["items"]] for line in lines] == [ids for _t, ids in made]
    growth = peak - before
    # Holding the conversation would take at least its size (as ORM rows and models, several
    # times that); a page of items (`ITEM_PAGE`) takes a small part of it.
    assert growth < export.size_bytes / 4, (
        f"{growth / 1e6:.1f} MB held for {export.size_bytes / 1e6:.1f} MB"
    )
