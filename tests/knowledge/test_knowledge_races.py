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
from tests.races import RacingApp, at_once, racing_app


@pytest.fixture
async def racing(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RacingApp]:
    async with racing_app(settings, monkeypatch) as racing:
        yield racing


async def bases_of_a_tenant(racing: RacingApp, count: int) -> tuple[list[str], Credentials]:
    """A tenant's ``count`` knowledge bases (committed): their URLs, and an editor (an API
    client)."""
    async with racing.arranging() as session:
        tenant = await racing.tenant(session)
        scopes = [Scope.knowledge_read, Scope.knowledge_write]
        editor = await client_token(racing.app, session, tenant, scopes)
    bases, urls = f"/api/v1/tenants/{tenant.slug}/knowledge-bases", []
    for n in range(count):
        body = {"name": f"Help {n}"}
        created = await racing.client.post(bases, json=body, headers=editor.headers)
        assert created.status_code == 201, created.text
        urls.append(f"{bases}/{created.json()['id']}")
    return urls, editor


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
    [base], editor = await bases_of_a_tenant(racing, 1)
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


async def test_uploads_at_once_to_a_tenants_bases_stop_at_its_quota(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads at once, each to another base of the tenant, room for three of them: three
    are taken, the others refused 413 ``knowledge_quota_exceeded`` on ``file``, none 500."""
    size, fits, at_once_ = 1024, 3, 8
    quota = {"knowledge_max_bytes_per_tenant": fits * size}
    async with racing_app(settings, monkeypatch, **quota) as racing:
        bases, editor = await bases_of_a_tenant(racing, at_once_)
        await racing.warm(at_once_)

        async def upload(n: int) -> httpx2.Response:
            file = (f"{n}.md", b"#" * size, "text/markdown")
            url = f"{bases[n]}/documents"
            return await racing.client.post(url, files={"file": file}, headers=editor.headers)

        answers = await at_once(at_once_, upload)
        listed = await racing.client.get(bases[0].rpartition("/")[0], headers=editor.headers)

    assert sorted(a.status_code for a in answers) == [202] * fits + [413] * (at_once_ - fits)
    for refused in (a for a in answers if a.status_code == 413):
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["code"] == "knowledge_quota_exceeded"
        assert [e["field"] for e in problem["errors"]] == ["file"]
    assert sum(b["size_bytes"] for b in listed.json()) == fits * size
