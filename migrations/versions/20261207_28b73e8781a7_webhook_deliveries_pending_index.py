"""Webhook deliveries: an index of the pending ones by tenant and time, for the tenant's slot
for slow endpoints to go to the oldest without reading the delivered ones.

Revision ID: 28b73e8781a7
Revises: ae4e3b14b1ce
Create Date: 2026-12-07 20:56:52.086342
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "28b73e8781a7"
down_revision: str | None = "ae4e3b14b1ce"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_pending",
            ["tenant_id", "created_at", "id"],
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_pending")
