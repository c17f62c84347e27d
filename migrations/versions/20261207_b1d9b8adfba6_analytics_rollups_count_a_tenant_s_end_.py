"""Analytics rollups count a tenant's end users once: every hour and UTC day gets a row for
the whole tenant (``widget_id`` the nil UUID) holding its end users distinct across the
widgets, which the series without a widget reads instead of adding up the widgets' (a
visitor of two widgets counted twice).

Buckets whose raw events are still stored count them; older ones, whose raw events the
retention removed, keep what the series showed before: the widgets' sum.

Revision ID: b1d9b8adfba6
Revises: fb937bd01859
Create Date: 2026-12-07 05:13:23.870191
"""

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b1d9b8adfba6"
down_revision: str | None = "fb937bd01859"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_WIDE = uuid.UUID(int=0)
EMPTY_HISTOGRAM = [0] * 92  # kithost.analytics.latency.empty() when this was written
COUNTERS = (
    "loads",
    "opens",
    "sessions",
    "threads",
    "messages",
    "responses",
    "tokens_in",
    "tokens_out",
    "feedback_up",
    "feedback_down",
    "client_errors",
    "guardrails_tripped",
)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROLLUPS = sa.table(
    "analytics_rollups",
    sa.column("tenant_id", sa.Uuid()),
    sa.column("period", sa.String()),
    sa.column("start", sa.DateTime()),
    sa.column("widget_id", sa.Uuid()),
    *(sa.column(name, sa.Integer()) for name in COUNTERS),
    sa.column("end_users", sa.Integer()),
    sa.column("first_token_ms", JSON),
    sa.column("total_ms", JSON),
)
EVENTS = sa.table(
    "analytics_events",
    sa.column("tenant_id", sa.Uuid()),
    sa.column("end_user_id", sa.String()),
    sa.column("occurred_at", sa.DateTime()),
)


def _truncated(period: str) -> Any:
    """``occurred_at`` cut to the start of its UTC hour or day, as rollups store starts."""
    at = EVENTS.c.occurred_at
    if op.get_bind().dialect.name == "postgresql":
        return sa.func.timezone("UTC", sa.func.date_trunc(period, sa.func.timezone("UTC", at)))
    pattern = "%Y-%m-%d %H:00:00.000000" if period == "hour" else "%Y-%m-%d 00:00:00.000000"
    return sa.func.strftime(pattern, at)


def _tenant_wide(*key: Any, end_users: Any) -> list[Any]:
    """A tenant-wide row's values after its key (tenant, period, start)."""
    return [
        *key,
        sa.literal(TENANT_WIDE, sa.Uuid()),
        *(sa.literal(0, sa.Integer()) for _ in COUNTERS),
        end_users,
        sa.literal(EMPTY_HISTOGRAM, JSON),
        sa.literal(EMPTY_HISTOGRAM, JSON),
    ]


def upgrade() -> None:
    columns = [c.name for c in ROLLUPS.columns]
    for period in ("hour", "day"):
        start = _truncated(period)
        counted = sa.select(
            *_tenant_wide(
                EVENTS.c.tenant_id,
                sa.literal(period, sa.String()),
                start,
                end_users=sa.func.count(sa.distinct(EVENTS.c.end_user_id)),
            )
        )
        op.execute(
            ROLLUPS.insert().from_select(
                columns,
                counted.where(EVENTS.c.end_user_id.is_not(None)).group_by(
                    EVENTS.c.tenant_id, start
                ),
            )
        )
    widgets, own = ROLLUPS.alias("widgets"), ROLLUPS.alias("own")
    held = sa.exists().where(
        own.c.tenant_id == widgets.c.tenant_id,
        own.c.period == widgets.c.period,
        own.c.start == widgets.c.start,
        own.c.widget_id == TENANT_WIDE,
    )
    summed = sa.func.sum(widgets.c.end_users)
    op.execute(
        ROLLUPS.insert().from_select(
            columns,
            sa.select(
                *_tenant_wide(
                    widgets.c.tenant_id, widgets.c.period, widgets.c.start, end_users=summed
                )
            )
            .where(widgets.c.widget_id != TENANT_WIDE, ~held)
            .group_by(widgets.c.tenant_id, widgets.c.period, widgets.c.start)
            .having(summed > 0),
        )
    )


def downgrade() -> None:
    op.execute(ROLLUPS.delete().where(ROLLUPS.c.widget_id == TENANT_WIDE))
