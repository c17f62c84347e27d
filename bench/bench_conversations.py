"""The conversation list over 100,000 threads: ``GET …/conversations`` with and without a
search (``q``), p50 and p95, on SQLite (FTS5) and PostgreSQL (full-text search).

One tenant, one widget, 100,000 threads of two messages (a question and an answer drawn
from a 2,000-word vocabulary, so a word is in ~1 % of the messages), written in bulk; the
app in this process (``httpx2.ASGITransport``: the route, its auth and the database, no
socket) with an API client's token; then ``ANALYZE``. On PostgreSQL the app connects as
production's role, which row-level security binds (the owner seeds). Each figure: the first
request discarded, then ``REQUESTS`` requests one after the other, each searching another
word.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import insert, text

from bench._common import app_role_url, emit, log, scratch_postgres, stop_on_sigterm
from kithost import migrate
from kithost.app import create_app
from kithost.auth.oauth import issue_access_token
from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.clients.service import create_client
from kithost.db import session_scope
from kithost.models import ChatItem, ChatThread, Tenant
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.widgets.service import create_widget

THREADS = 100_000
BATCH = 5_000
REQUESTS = 40
VOCABULARY = [f"word{n:04d}" for n in range(2_000)]


def _message(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(words))


async def seed(settings: Settings) -> str:
    """The threads, and a token of a client that reads them."""
    app = create_app(settings)
    rng = random.Random(7)
    async with session_scope(app.state.sessionmaker) as session:
        tenant = Tenant(slug="bench", name="Bench")
        session.add(tenant)
        await session.flush()
        widget = await create_widget(session, CLI, tenant, name="Shop")
        made = await create_client(
            session, CLI, tenant, name="bench", scopes=[Scope.conversations_read]
        )
        token = await issue_access_token(
            session, settings, app.state.secret_box, made.client, [Scope.conversations_read]
        )
        owned = {"tenant_id": tenant.id, "widget_id": widget.id, "end_user_id": "u:1"}
    start = utcnow() - timedelta(days=30)
    started = time.monotonic()
    for first in range(0, THREADS, BATCH):
        threads: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        for number in range(first, first + BATCH):
            thread_id = f"thr_{number:08d}"
            at = start + timedelta(seconds=number * 20)
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
            for index, (kind, part) in enumerate(
                (("user_message", "input_text"), ("assistant_message", "output_text"))
            ):
                said = _message(rng, 12)
                items.append(
                    {
                        "id": f"msg_{number:08d}_{index}",
                        "thread_id": thread_id,
                        "kind": kind,
                        "created_at": at,
                        "payload_version": 1,
                        **owned,
                        "payload": {"type": kind, "content": [{"type": part, "text": said}]},
                    }
                )
        async with session_scope(app.state.sessionmaker) as session:
            await session.execute(insert(ChatThread), threads)
            await session.execute(insert(ChatItem), items)
    async with app.state.engine.begin() as connection:  # statistics, as autovacuum would
        await connection.execute(text("ANALYZE"))
    log(f"seeded {THREADS:,} threads in {time.monotonic() - started:.0f}s")
    await app.state.engine.dispose()
    return token


async def measure(settings: Settings, token: str, database: str) -> None:
    app = create_app(settings)
    transport = httpx2.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(11)
    async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as client:
        words = [rng.choice(VOCABULARY) for _ in range(2 * (REQUESTS + 1))]
        runs: dict[str, list[dict[str, str]]] = {
            "list": [{}] * (REQUESTS + 1),
            "search one word": [{"q": word} for word in words[: REQUESTS + 1]],
            "search two words": [
                {"q": f"{a} {b}"} for a, b in zip(words[::2], words[1::2], strict=True)
            ],
        }
        for name, params in runs.items():
            times = []
            for attempt, query in enumerate(params):
                started = time.perf_counter()
                answer = await client.get(
                    "/api/v1/tenants/bench/conversations", params=query, headers=headers
                )
                elapsed = (time.perf_counter() - started) * 1000
                if answer.status_code != 200:
                    raise RuntimeError(answer.text)
                if attempt:
                    times.append(elapsed)
            p95 = statistics.quantiles(times, n=20)[-1]
            note = (
                f"{THREADS:,} threads, {REQUESTS} requests, p50 {statistics.median(times):.1f} ms"
            )
            emit("conversations", f"{name} p95 ({database})", round(p95, 1), "ms", note)
    await app.state.engine.dispose()


def run(name: str, owner: Settings, app: Settings) -> None:
    migrate.upgrade(app)
    token = asyncio.run(seed(owner))
    asyncio.run(measure(app, token, name))


def main() -> int:
    stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="kithost-bench-conversations-") as tmp:
        sqlite = Settings(_env_file=None, data_dir=Path(tmp) / "sqlite")
        run("SQLite", sqlite, sqlite)
        with scratch_postgres() as url:
            data_dir = Path(tmp) / "pg"
            owner = Settings(_env_file=None, data_dir=data_dir, database_url=url)
            app = Settings(
                _env_file=None,
                data_dir=data_dir,
                database_url=app_role_url(url),
                migration_database_url=url,
            )
            run("PostgreSQL", owner, app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
