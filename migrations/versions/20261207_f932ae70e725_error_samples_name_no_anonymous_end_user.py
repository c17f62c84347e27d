"""Error groups' samples name no anonymous end user: a device id (``a:…``) is a credential
(it mints sessions) and staff read samples, so the samples stored before lose their
``end_user`` when it is one; identified ones (``u:…``) stay. Erasing an end user finds
their samples by ``event_id`` since. The downgrade has nothing to put back.

Revision ID: f932ae70e725
Revises: 1d47aea9c808
Create Date: 2026-12-07 10:41:04.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "f932ae70e725"
down_revision: str | None = "1d47aea9c808"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GROUPS = sa.table(
    "error_groups",
    sa.column("id", sa.Uuid()),
    sa.column("sample", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)


def upgrade() -> None:
    bind = op.get_bind()
    anonymous = GROUPS.c.sample["end_user"].as_string().like("a:%")
    rows = bind.execute(sa.select(GROUPS.c.id, GROUPS.c.sample).where(anonymous)).all()
    for group_id, sample in rows:
        kept = {key: value for key, value in sample.items() if key != "end_user"}
        bind.execute(GROUPS.update().where(GROUPS.c.id == group_id).values(sample=kept))


def downgrade() -> None:
    pass
