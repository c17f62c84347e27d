"""Webhook endpoints record a slow run (slow_since): a slow endpoint takes one attempt at a time.

Revision ID: 66fd0ee242c4
Revises: ed46856873e3
Create Date: 2026-12-07 14:57:22.170273
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "66fd0ee242c4"
down_revision: str | None = "ed46856873e3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.add_column(sa.Column("slow_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.drop_column("slow_since")
