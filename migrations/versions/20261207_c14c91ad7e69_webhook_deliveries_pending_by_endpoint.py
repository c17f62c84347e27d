"""Webhook deliveries: the pending ones' index is by endpoint and time, not tenant and time

The tenant's slot for slow endpoints goes to the oldest pending delivery of an endpoint that
may go (``webhooks.repository.next_turn``): read from the tenant's pending deliveries by
time, a resting endpoint's backlog (a day of them) was read at every turn. Each endpoint's
oldest is now one read of this index.

Revision ID: c14c91ad7e69
Revises: 7e3b5c1d9a42
Create Date: 2026-12-07 23:59:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c14c91ad7e69"
down_revision: str | None = "7e3b5c1d9a42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    _index_pending_by("endpoint_id")


def downgrade() -> None:
    _index_pending_by("tenant_id")


def _index_pending_by(column: str) -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_pending")
        batch_op.create_index(
            "ix_webhook_deliveries_pending",
            [column, "created_at", "id"],
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )
