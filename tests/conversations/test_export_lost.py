"""A ready export whose file is gone from the blob storage (lost with a volume, or deleted
by an invalidation or a purge just after the download was checked) is a 410 problem before
the download starts: it used to be a 200 whose body broke off, and a server error.

(The worker's side runs here; tests/conversations/test_exports.py runs a real one.)"""

from __future__ import annotations

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat.runtime import runtime
from kithost.conversations import exports
from kithost.models import ConversationExport
from tests.api.helpers import audit_actions
from tests.chat.helpers import assert_problem
from tests.conftest import state_of
from tests.conversations.helpers import acme_with_chats, link_for
from tests.workers import RecordedTasks


async def test_a_ready_export_whose_file_is_lost_is_gone_not_a_broken_download(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is audited then: the download did not happen."""
    tenant, owner, _threads = await acme_with_chats(app, db)
    monkeypatch.setattr(app.state.celery, "send_task", RecordedTasks().record)
    link = await link_for(app, client, tenant, owner)
    export = await db.scalar(
        select(ConversationExport).where(ConversationExport.tenant_id == tenant.id)
    )
    assert export is not None
    await runtime(state_of(app)).storage.delete([exports.blob_key(export)])

    lost = await client.get(link)
    assert_problem(lost, 410, "export_lost")
    assert "conversations.export_downloaded" not in await audit_actions(db, tenant.id)
