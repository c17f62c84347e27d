"""Knowledge bases adopted from an Agent Builder export are marked (deleting one leaves its
vector store at OpenAI), and a vector store is one base's only, across tenants.

Bases adopted before are those whose description says so (``widgets.adoption`` wrote it).
Where several bases held one store (an export imported twice, or a store another tenant's
base held), the oldest keeps it and the others are left without one: a deletion of either
would have deleted the store the other searched.

Revision ID: 1d47aea9c808
Revises: fc4b9ae21bbf
Create Date: 2026-12-07 02:56:19.388503
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1d47aea9c808"
down_revision: str | None = "fc4b9ae21bbf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BASES = sa.table(
    "knowledge_bases",
    sa.column("id", sa.Uuid()),
    sa.column("created_at", sa.DateTime()),
    sa.column("description", sa.String()),
    sa.column("vector_store_id", sa.String()),
    sa.column("adopted", sa.Boolean()),
)


def upgrade() -> None:
    with op.batch_alter_table("knowledge_bases") as batch_op:
        batch_op.add_column(
            sa.Column("adopted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        BASES.update()
        .where(BASES.c.description.like("Adopted from an Agent Builder export: %"))
        .values(adopted=True)
    )
    older = BASES.alias("older")
    op.execute(
        BASES.update()
        .where(
            sa.exists().where(
                older.c.vector_store_id == BASES.c.vector_store_id,
                sa.or_(
                    older.c.created_at < BASES.c.created_at,
                    sa.and_(older.c.created_at == BASES.c.created_at, older.c.id < BASES.c.id),
                ),
            )
        )
        .values(vector_store_id=None)
    )
    with op.batch_alter_table("knowledge_bases") as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_knowledge_bases_vector_store_id"), ["vector_store_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("knowledge_bases") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_knowledge_bases_vector_store_id"), type_="unique")
        batch_op.drop_column("adopted")
