"""A widget's model key names the endpoint it was set for (``widgets.model_key_base_url``).

A key set before was sent to whatever ``base_url`` the config named: each is bound to the
``agent.base_url`` its widget's draft has now (NULL when it has none: the operator's
endpoint), the endpoint its owner last saved with it.

Revision ID: fc4b9ae21bbf
Revises: 3c7d2e9a41b6
Create Date: 2026-12-06 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fc4b9ae21bbf"
down_revision: str | None = "3c7d2e9a41b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DRAFT_BASE_URL = {
    "postgresql": "draft -> 'agent' ->> 'base_url'",
    "sqlite": "json_extract(draft, '$.agent.base_url')",
}


def upgrade() -> None:
    with op.batch_alter_table("widgets") as batch_op:
        batch_op.add_column(sa.Column("model_key_base_url", sa.Text(), nullable=True))
    base_url = DRAFT_BASE_URL[op.get_bind().dialect.name]
    op.execute(
        f"UPDATE widgets SET model_key_base_url = {base_url} WHERE model_key IS NOT NULL"  # noqa: S608 (constants)
    )


def downgrade() -> None:
    with op.batch_alter_table("widgets") as batch_op:
        batch_op.drop_column("model_key_base_url")
