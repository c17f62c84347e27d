"""Rollup marks are appended (one per batch and hour), never updated: concurrent batches of
one hour no longer queue behind a single row's lock.

Revision ID: e5a2c7d9b104
Revises: d8b3f5a91c47
Create Date: 2026-11-25 20:55:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e5a2c7d9b104"
down_revision: str | None = "d8b3f5a91c47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = "pk_analytics_pending_rollups"


def upgrade() -> None:
    with op.batch_alter_table("analytics_pending_rollups") as batch_op:
        batch_op.drop_constraint(PK, type_="primary")
        batch_op.create_primary_key(PK, ["tenant_id", "hour", "marked_at"])


def downgrade() -> None:
    op.execute(
        "DELETE FROM analytics_pending_rollups WHERE marked_at < ("
        "SELECT max(latest.marked_at) FROM analytics_pending_rollups AS latest"
        " WHERE latest.tenant_id = analytics_pending_rollups.tenant_id"
        " AND latest.hour = analytics_pending_rollups.hour)"
    )
    with op.batch_alter_table("analytics_pending_rollups") as batch_op:
        batch_op.drop_constraint(PK, type_="primary")
        batch_op.create_primary_key(PK, ["tenant_id", "hour"])
