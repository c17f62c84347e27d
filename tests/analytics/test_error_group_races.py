"""Batches of one widget's client errors stored at once, as ingest tasks on several workers
store them: each counted the widget's new groups of the hour before any had written one,
and all made theirs (and announced them), past the cap."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from kithost.analytics.errors import service as errors
from kithost.analytics.ingestion import service as ingestion
from kithost.analytics.ingestion.tasks import ingest
from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.db import session_scope
from kithost.models import ErrorGroup, WebhookDelivery
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.widgets.service import create_widget, publish_draft
from tests.analytics.helpers import NEW_GROUP_HOOK, SHOP, USER, made_up_error
from tests.factories import client_token
from tests.races import at_once, racing_app
from tests.workers import RecordedTasks

AT_ONCE = 8
CAP = 5
DISTINCT = 3
"""Client errors unlike any other in each batch."""


async def test_batches_at_once_make_no_more_new_groups_than_the_cap(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(errors, "NEW_GROUPS_PER_HOUR", CAP)
    async with racing_app(settings, monkeypatch) as racing:
        tasks = RecordedTasks()
        monkeypatch.setattr(racing.app.state.celery, "send_task", tasks.record)
        async with racing.arranging() as session:
            tenant = await racing.tenant(session)
            widget = await create_widget(session, CLI, tenant, name="Support", origins=[SHOP])
            await publish_draft(session, CLI, widget, published_by=None)
            hooks = await client_token(racing.app, session, tenant, [Scope.webhooks_write])
        created = await racing.client.post(
            f"/api/v1/tenants/{tenant.slug}/webhooks", json=NEW_GROUP_HOOK, headers=hooks.headers
        )
        assert created.status_code == 201, created.text

        for _ in range(AT_ONCE):
            batch = {"end_user": USER, "events": [made_up_error() for _ in range(DISTINCT)]}
            response = await racing.client.post(
                f"/v1/embed/{widget.public_key}/events", json=batch, headers={"Origin": SHOP}
            )
            assert response.status_code == 202, response.text
        batches = tasks.take(ingest.name)
        assert len(batches) == AT_ONCE
        now = utcnow()

        async def stored(n: int) -> int:
            tenant_id, widget_id, events = batches[n]
            async with session_scope(racing.app.state.sessionmaker, tenant=tenant.id) as session:
                return await ingestion.store(
                    session, uuid.UUID(tenant_id), uuid.UUID(widget_id), events, now
                )

        await racing.warm(AT_ONCE)
        assert await at_once(AT_ONCE, stored) == [DISTINCT] * AT_ONCE

        async with racing.arranging() as session:
            groups = (
                await session.scalars(select(ErrorGroup).where(ErrorGroup.tenant_id == tenant.id))
            ).all()
            announced = await session.scalar(
                select(func.count()).where(
                    WebhookDelivery.tenant_id == tenant.id,
                    WebhookDelivery.event_type == "client_error.new_group",
                )
            )
        assert sorted(g.kind for g in groups) == ["network"] * CAP + ["overflow"]
        assert announced == CAP
        assert sum(g.count for g in groups) == AT_ONCE * DISTINCT, "every one counted"
