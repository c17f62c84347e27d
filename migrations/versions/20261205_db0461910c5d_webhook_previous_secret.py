"""A webhook endpoint's previous signing secret (encrypted), signing beside the new one for a
while after a rotation.

Revision ID: db0461910c5d
Revises: 91a1eecd5cd9
Create Date: 2026-12-05 17:02:56.932484
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "db0461910c5d"
down_revision: str | None = "91a1eecd5cd9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.add_column(sa.Column("previous_secret", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.drop_column("previous_secret_until")
        batch_op.drop_column("previous_secret")
