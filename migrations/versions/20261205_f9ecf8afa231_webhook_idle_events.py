"""webhook idle events

Revision ID: f9ecf8afa231
Revises: e340f0ee765b
Create Date: 2026-12-05 19:11:30.838445
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f9ecf8afa231"
down_revision: str | None = "e340f0ee765b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_idle_marks",
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("activity_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_idle_marks_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_webhook_idle_marks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["chat_threads.id"],
            name=op.f("fk_webhook_idle_marks_thread_id_chat_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_idle_marks")),
        sa.UniqueConstraint(
            "endpoint_id", "thread_id", name=op.f("uq_webhook_idle_marks_endpoint_id_thread_id")
        ),
    )
    with op.batch_alter_table("webhook_idle_marks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_idle_marks_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webhook_idle_marks_thread_id"), ["thread_id"], unique=False
        )

    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("idle_minutes", sa.Integer(), nullable=False, server_default="30")
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_column("idle_minutes")

    with op.batch_alter_table("webhook_idle_marks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_idle_marks_thread_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_idle_marks_tenant_id"))

    op.drop_table("webhook_idle_marks")
