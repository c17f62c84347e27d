"""The user messages of the last 24 hours, stored before the quota kept its own count
(``chat_quota_uses``), are counted by it, on both databases: the quota goes on counting
them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select

from kithost import migrate
from kithost.models import ChatItem, ChatQuotaUse, ChatThread, Tenant, Widget
from kithost.models.base import utcnow
from kithost.settings import Settings
from tests.conftest import database_at

BEFORE = "c91828dac425"
"""The revision before the quota kept its own count."""


@pytest.fixture(params=["postgresql", "sqlite"])
def before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A new database migrated up to :data:`BEFORE`."""
    with database_at(BEFORE, request.param, tmp_path) as settings:
        yield settings


def test_the_last_days_user_messages_are_counted(before: Settings) -> None:
    engine = create_engine(before.database.replace("+aiosqlite", ""))
    now = utcnow()
    items = {
        "msg_recent": ("user_message", now - timedelta(hours=23)),
        "msg_old": ("user_message", now - timedelta(hours=25)),
        "msg_answer": ("assistant_message", now - timedelta(hours=1)),
    }
    try:
        with engine.begin() as connection:
            tenant, widget = uuid.uuid4(), uuid.uuid4()
            connection.execute(insert(Tenant).values(id=tenant, slug="acme", name="A"))
            connection.execute(
                insert(Widget).values(id=widget, tenant_id=tenant, name="W", public_key="pk_w")
            )
            owner = {"tenant_id": tenant, "widget_id": widget, "end_user_id": "a:anon_x"}
            connection.execute(
                insert(ChatThread).values(id="thr", payload={}, payload_version=1, **owner)
            )
            for item_id, (kind, created_at) in items.items():
                connection.execute(
                    insert(ChatItem).values(
                        id=item_id,
                        thread_id="thr",
                        kind=kind,
                        created_at=created_at,
                        payload={},
                        payload_version=1,
                        **owner,
                    )
                )
        migrate.upgrade(before)
        with engine.connect() as connection:
            rows = connection.execute(
                select(ChatQuotaUse.id, ChatQuotaUse.kind, ChatQuotaUse.end_user_id)
            )
            stored = rows.all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in stored] == [("msg_recent", "message", "a:anon_x")]
