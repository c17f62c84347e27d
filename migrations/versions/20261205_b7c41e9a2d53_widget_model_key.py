"""A widget's own model key: the credential for the endpoint its agent's ``base_url`` names.

Revision ID: b7c41e9a2d53
Revises: e5a2c7d9b104
Create Date: 2026-12-05 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7c41e9a2d53"
down_revision: str | None = "e5a2c7d9b104"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("widgets") as batch_op:
        batch_op.add_column(sa.Column("model_key", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("widgets") as batch_op:
        batch_op.drop_column("model_key")
