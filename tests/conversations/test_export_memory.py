"""The streamed export holds a page of conversations at a time, never all of them: 3,000
threads go out over a real socket while ``tracemalloc`` watches the process (server and
client both: uvicorn serves the app in the test's event loop) stay far below the export's
size."""

from __future__ import annotations

import secrets
import tracemalloc
from datetime import timedelta

import httpx2
from fastapi import FastAPI
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.models import ChatItem, ChatThread, Role
from kithost.models.base import utcnow
from kithost.widgets.service import create_widget
from tests.factories import login, make_member, make_tenant

THREADS = 3_000
ITEMS = 4
TEXT = "How long does shipping to Norway take for a tent? " * 30  # 1.5 KB


async def test_the_streamed_export_of_thousands_of_threads_stays_small_in_memory(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    widget = await create_widget(db, CLI, tenant, name="Shop")
    start = utcnow() - timedelta(days=1)
    threads, items = [], []
    for number in range(THREADS):
        thread_id = f"thr_{number:05d}{secrets.token_hex(4)}"
        at = start + timedelta(seconds=number)
        owned = {"tenant_id": tenant.id, "widget_id": widget.id, "end_user_id": "u:1"}
        threads.append(
            {
                "id": thread_id,
                "created_at": at,
                "updated_at": at,
                "payload": {},
                "payload_version": 1,
                **owned,
            }
        )
        for index in range(ITEMS):
            kind = ("user_message", "assistant_message")[index % 2]
            items.append(
                {
                    "id": f"msg_{number:05d}_{index}",
                    "thread_id": thread_id,
                    "kind": kind,
                    "created_at": at,
                    "payload_version": 1,
                    **owned,
                    "payload": {"type": kind, "content": [{"type": "input_text", "text": TEXT}]},
                }
            )
    await db.execute(insert(ChatThread), threads)
    await db.execute(insert(ChatItem), items)
    await db.flush()
    del threads, items

    export = "/api/v1/tenants/acme/conversations/export.jsonl"
    tracemalloc.start()
    try:
        # The route's first request builds what every later one reuses: not the export's.
        nothing = await http.get(export, params={"q": "zz-nothing"}, headers=owner.headers)
        assert nothing.text == ""
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        received = lines = 0
        async with http.stream("GET", export, headers=owner.headers) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = peak - before
    assert lines == THREADS
    assert received > THREADS * ITEMS * len(TEXT), "every message went out"
    # Holding the export would take at least its size (as ORM rows and models, several
    # times that); a page of conversations (`EXPORT_PAGE`) takes a small part of it.
    assert growth < received / 8, f"{growth / 1e6:.1f} MB held for {received / 1e6:.1f} MB"
