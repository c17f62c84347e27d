"""A note on each published widget version.

Revision ID: fa7f3cd9e79f
Revises: 1191d8c2213a
Create Date: 2026-12-05 16:09:49.855332
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fa7f3cd9e79f"
down_revision: str | None = "1191d8c2213a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("widget_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.String(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("widget_versions", schema=None) as batch_op:
        batch_op.drop_column("note")
