"""Knowledge bases read while documents are uploaded (``tests/races.py``: units of work that
commit, each on a connection of its own): a base's page is one snapshot, its figures
counting exactly the files it lists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.scopes import Scope
from kithost.settings import Settings
from tests.factories import Credentials, client_token
from tests.knowledge.helpers import GUIDE
from tests.races import RacingApp, racing_app


@pytest.fixture
async def racing(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RacingApp]:
    async with racing_app(settings, monkeypatch) as racing:
        yield racing


async def a_base(racing: RacingApp) -> tuple[str, Credentials]:
    """A tenant's knowledge base (committed): its URL and an editor (an API client)."""
    async with racing.arranging() as session:
        tenant = await racing.tenant(session)
        scopes = [Scope.knowledge_read, Scope.knowledge_write]
        editor = await client_token(racing.app, session, tenant, scopes)
    bases = f"/api/v1/tenants/{tenant.slug}/knowledge-bases"
    created = await racing.client.post(bases, json={"name": "Help"}, headers=editor.headers)
    assert created.status_code == 201, created.text
    return f"{bases}/{created.json()['id']}", editor


def figures_of_files(files: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "documents": len(files),
        "size_bytes": sum(f["size_bytes"] for f in files),
        "processing": sum(f["status"] == "processing" for f in files),
        "failed": sum(f["status"] == "failed" for f in files),
    }


async def test_a_bases_page_counts_the_files_it_lists_while_an_upload_commits(
    racing: RacingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload commits right after the page's first read of the base's documents: the
    page shows the base before it or after it, its figures and its files alike, never the
    figures of one and the files of the other. (On SQLite the page's unit of work holds
    the write lock, so the upload commits after it; on PostgreSQL it commits in between.)"""
    base, editor = await a_base(racing)
    client, app = racing.client, racing.app
    first = await client.post(f"{base}/documents", files={"file": GUIDE}, headers=editor.headers)
    assert first.status_code == 202, first.text
    armed, uploads = True, list[asyncio.Task[httpx2.Response]]()
    execute = AsyncSession.execute

    async def upload() -> httpx2.Response:
        file = ("more.md", b"# More\n", "text/markdown")
        return await client.post(f"{base}/documents", files={"file": file}, headers=editor.headers)

    async def upload_between(session: AsyncSession, statement: Any, *args: Any, **kw: Any) -> Any:
        nonlocal armed
        result = await execute(session, statement, *args, **kw)
        if armed and "knowledge_documents" in str(statement):
            armed = False
            uploads.append(asyncio.create_task(upload()))
            if app.state.engine.dialect.name == "postgresql":
                await asyncio.wait(uploads)
        return result

    monkeypatch.setattr(AsyncSession, "execute", upload_between)
    page = await client.get(base, headers=editor.headers)
    [uploaded] = await asyncio.gather(*uploads)

    assert uploaded.status_code == 202, uploaded.text
    assert page.status_code == 200, page.text
    shown = page.json()
    assert {k: shown[k] for k in figures_of_files([])} == figures_of_files(shown["files"])
    after = (await client.get(base, headers=editor.headers)).json()
    assert after["documents"] == len(after["files"]) == 2
