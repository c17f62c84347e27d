"""Rollups stored before the tenant-wide row get one from the migration, on both databases:
distinct end users from the raw events where they are still stored, the widgets' sum (what
the series showed before) where the retention removed them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, select

from kithost import migrate
from kithost.analytics import latency
from kithost.models import TENANT_WIDE, AnalyticsEvent, AnalyticsRollup, RollupPeriod, Tenant
from kithost.models.base import utcnow
from kithost.settings import Settings
from tests.conftest import database_at

BEFORE = "fb937bd01859"
"""The revision before the tenant-wide rows."""


@pytest.fixture(params=["postgresql", "sqlite"])
def before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with database_at(BEFORE, request.param, tmp_path) as settings:
        yield settings


def rollup(
    tenant: uuid.UUID, period: RollupPeriod, start: datetime, widget: uuid.UUID, users: int
) -> dict[str, object]:
    return {
        "tenant_id": tenant,
        "period": period,
        "start": start,
        "widget_id": widget,
        "end_users": users,
        "loads": 1,
        "first_token_ms": latency.empty(),
        "total_ms": latency.empty(),
    }


def test_buckets_count_the_tenants_end_users_once(before: Settings) -> None:
    tenant, shop, blog = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    hour = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    day = hour.replace(hour=0)
    old = day - timedelta(days=400)  # its raw events are gone
    rows = [
        rollup(tenant, period, start, widget, users)
        for period, start in [(RollupPeriod.hour, hour), (RollupPeriod.day, day)]
        for widget, users in [(shop, 2), (blog, 1)]
    ]
    rows += [rollup(tenant, RollupPeriod.day, old, w, n) for w, n in [(shop, 3), (blog, 4)]]
    seen = [(shop, "a:h_one"), (shop, "u:two"), (blog, "a:h_one")]  # one visits both widgets
    engine = create_engine(before.database.replace("+aiosqlite", ""))
    try:
        with engine.begin() as connection:
            connection.execute(insert(Tenant).values(id=tenant, slug="acme", name="A"))
            connection.execute(insert(AnalyticsRollup), rows)
            for n, (widget, user) in enumerate(seen):
                at = hour + timedelta(minutes=10 + n)
                connection.execute(
                    insert(AnalyticsEvent).values(
                        tenant_id=tenant,
                        event_id=f"e{n}",
                        widget_id=widget,
                        name="widget.opened",
                        occurred_at=at,
                        received_at=at,
                        end_user_id=user,
                        data={},
                    )
                )
        migrate.upgrade(before)
        with engine.connect() as connection:
            tenant_wide = connection.execute(
                select(AnalyticsRollup.period, AnalyticsRollup.start, AnalyticsRollup.end_users)
                .where(AnalyticsRollup.widget_id == TENANT_WIDE)
                .order_by(AnalyticsRollup.start)
            )
            migrated = {(p, s.replace(tzinfo=UTC)): users for p, s, users in tenant_wide}
            starts = connection.scalar(
                select(func.count(func.distinct(AnalyticsRollup.start))).where(
                    AnalyticsRollup.period == RollupPeriod.day
                )
            )
        assert migrated == {
            (RollupPeriod.day, old): 7,
            (RollupPeriod.day, day): 2,
            (RollupPeriod.hour, hour): 2,
        }
        assert starts == 2, "the tenant-wide rows start as the widgets' do, to the character"

    finally:
        engine.dispose()
