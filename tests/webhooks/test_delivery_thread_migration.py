"""Deliveries stored before they named their thread get it from their payload, and those of
threads deleted before go (they held what was said, and no erase could find an anonymous
visitor's), on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select

from kithost import migrate
from kithost.models import ChatThread, Tenant, WebhookDelivery, WebhookEndpoint, Widget
from kithost.settings import Settings
from tests.conftest import database_at

BEFORE = "f932ae70e725"
"""The revision before deliveries named their thread."""


@pytest.fixture(params=["postgresql", "sqlite"])
def before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A new database migrated up to :data:`BEFORE`."""
    with database_at(BEFORE, request.param, tmp_path) as settings:
        yield settings


def test_stored_deliveries_name_their_thread_and_a_deleted_ones_go(before: Settings) -> None:
    engine = create_engine(before.database.replace("+aiosqlite", ""))
    events: dict[str, tuple[str, dict[str, Any]]] = {
        "message": ("conversation.message", {"thread_id": "thr_kept", "end_user": None}),
        "idle": ("conversation.idle", {"id": "thr_kept", "items": []}),
        "gone": ("conversation.message", {"thread_id": "thr_gone", "end_user": None}),
        "published": ("widget.published", {"widget_id": "w", "version": 1}),
    }
    try:
        with engine.begin() as connection:
            tenant, widget, endpoint = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            connection.execute(insert(Tenant).values(id=tenant, slug="acme", name="A"))
            connection.execute(
                insert(Widget).values(id=widget, tenant_id=tenant, name="W", public_key="pk_w")
            )
            connection.execute(
                insert(ChatThread).values(
                    id="thr_kept",
                    tenant_id=tenant,
                    widget_id=widget,
                    end_user_id="a:anon_x",
                    payload={},
                    payload_version=1,
                )
            )
            connection.execute(
                insert(WebhookEndpoint).values(
                    id=endpoint, tenant_id=tenant, url="https://h.example", events=[], secret="s"
                )
            )
            for name, (event_type, data) in events.items():
                connection.execute(
                    insert(WebhookDelivery).values(
                        tenant_id=tenant,
                        endpoint_id=endpoint,
                        event_id=name,
                        event_type=event_type,
                        payload={"type": event_type, "data": data},
                    )
                )
        migrate.upgrade(before)
        with engine.connect() as connection:
            rows = connection.execute(select(WebhookDelivery.event_id, WebhookDelivery.thread_id))
            stored = dict(rows.all())
    finally:
        engine.dispose()
    assert stored == {"message": "thr_kept", "idle": "thr_kept", "published": None}
