"""Webhook endpoints rest while failing: no delivery is attempted before next_attempt_at.

Revision ID: ed46856873e3
Revises: 3cf61a063c73
Create Date: 2026-12-07 11:42:46.446371
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ed46856873e3"
down_revision: str | None = "3cf61a063c73"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.drop_column("next_attempt_at")
