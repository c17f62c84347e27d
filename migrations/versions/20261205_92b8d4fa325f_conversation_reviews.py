"""Staff notes and the reviewed flag on conversations.

Revision ID: 92b8d4fa325f
Revises: a3b2945f483d
Create Date: 2026-12-05 13:24:19.565842
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "92b8d4fa325f"
down_revision: str | None = "a3b2945f483d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversation_reviews",
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reviewed", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_conversation_reviews_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["chat_threads.id"],
            name=op.f("fk_conversation_reviews_thread_id_chat_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("thread_id", name=op.f("pk_conversation_reviews")),
    )
    with op.batch_alter_table("conversation_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_reviews_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_reviews_tenant_id"))

    op.drop_table("conversation_reviews")
