"""conversation exports

Revision ID: 90692dc37290
Revises: f9ecf8afa231
Create Date: 2026-12-05 19:17:37.191919
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "90692dc37290"
down_revision: str | None = "f9ecf8afa231"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversation_exports",
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column(
            "filters", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending", "ready", "failed", name="exportstatus", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("requested_by", sa.String(length=255), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_conversation_exports_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_exports")),
    )
    with op.batch_alter_table("conversation_exports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_exports_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_exports_tenant_id"))

    op.drop_table("conversation_exports")
