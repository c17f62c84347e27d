"""``kithost analytics rollup``: recompute rollups of a window from raw events, as a real
process against the test database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kithost.analytics.ingestion import service as ingestion
from kithost.db import Sessionmaker, create_sessionmaker, session_scope
from kithost.models import AnalyticsRollup, RollupPeriod, Tenant, Widget
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.worker.app import create_celery
from kithost.worker.enqueue import PendingTasks
from tests.analytics.helpers import USER, event, published_widget
from tests.cli import kithost
from tests.factories import bare_tenant


@pytest.fixture
async def committed(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Sessionmaker]:
    """Sessions that really commit (the CLI runs in another process); tenants made through
    them are deleted afterwards."""
    sessionmaker = create_sessionmaker(engine, PendingTasks(create_celery(settings)))
    yield sessionmaker
    async with session_scope(sessionmaker) as session:
        await session.execute(delete(Tenant).where(Tenant.slug.like("analytics-%")))


async def loads(sessionmaker: Sessionmaker, widget: Widget, period: RollupPeriod) -> int:
    async with session_scope(sessionmaker) as session:
        total = await session.scalar(
            select(func.sum(AnalyticsRollup.loads)).where(
                AnalyticsRollup.tenant_id == widget.tenant_id, AnalyticsRollup.period == period
            )
        )
    return int(total or 0)


async def test_recompute_a_window_with_a_progress_bar(
    settings: Settings, committed: Sessionmaker
) -> None:
    async with session_scope(committed) as session:
        tenant = await bare_tenant(session, "analytics")
        widget = await published_widget(session, tenant)
        yesterday = int((datetime.now(UTC) - timedelta(days=1)).timestamp() * 1000)
        events = [event("loader.loaded", time=yesterday), event("loader.loaded")]
        await ingestion.store(
            session, tenant.id, widget.id, [{**e, "end_user": USER} for e in events], utcnow()
        )
    assert await loads(committed, widget, RollupPeriod.hour) == 0  # no rollup ran yet

    since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    result = kithost(
        settings, "analytics", "rollup", "--since", since, "--tenant", tenant.slug, "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["tenants"] == 1
    assert summary["recomputed"] == summary["hours"] >= 48
    assert "Recomputing rollups" in result.stderr
    assert await loads(committed, widget, RollupPeriod.hour) == 2
    assert await loads(committed, widget, RollupPeriod.day) == 2

    unknown = kithost(
        settings, "analytics", "rollup", "--since", since, "--tenant", "nope", "--json"
    )
    assert unknown.returncode == 1
    assert json.loads(unknown.stderr)["code"] == "tenant_not_found"
