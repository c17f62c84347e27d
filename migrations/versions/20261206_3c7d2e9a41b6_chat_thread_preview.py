"""Chat threads started in a dashboard preview are marked (not a tenant's conversations).

Revision ID: 3c7d2e9a41b6
Revises: bf5a3a2ac457
Create Date: 2026-12-06 07:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c7d2e9a41b6"
down_revision: str | None = "bf5a3a2ac457"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_threads") as batch_op:
        batch_op.add_column(
            sa.Column("preview", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("chat_threads") as batch_op:
        batch_op.drop_column("preview")
