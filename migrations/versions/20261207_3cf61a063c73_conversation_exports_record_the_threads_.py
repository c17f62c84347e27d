"""Conversation exports record the threads their files hold (``conversation_export_threads``),
so that an export holding a conversation deleted since is refused and its file deleted: the
file kept the transcript until the export expired, a day later. No foreign key to the
thread: the row outliving the thread is what tells. Row-level security as on every
tenant-owned table (migrations ``5f0c3a7e21b4`` and ``bb42f09518a6``). Exports written
before hold no rows; they expire within a day. The downgrade drops the table.

Revision ID: 3cf61a063c73
Revises: eabf5a103fd0
Create Date: 2026-12-07 11:38:38.149937
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3cf61a063c73"
down_revision: str | None = "eabf5a103fd0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VISIBLE = (
    "tenant_id = NULLIF(current_setting('kithost.tenant_id', true), '')::uuid"
    " OR current_setting('kithost.rls_bypass', true) = 'on'"
)


def upgrade() -> None:
    op.create_table(
        "conversation_export_threads",
        sa.Column("export_id", sa.Uuid(), nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["conversation_exports.id"],
            name=op.f("fk_conversation_export_threads_export_id_conversation_exports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_conversation_export_threads_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "export_id", "thread_id", name=op.f("pk_conversation_export_threads")
        ),
    )
    with op.batch_alter_table("conversation_export_threads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_export_threads_thread", ["tenant_id", "thread_id"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE conversation_export_threads ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE conversation_export_threads FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON conversation_export_threads USING ({VISIBLE})"
            f" WITH CHECK ({VISIBLE})"
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_export_threads", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_export_threads_thread")
    op.drop_table("conversation_export_threads")
