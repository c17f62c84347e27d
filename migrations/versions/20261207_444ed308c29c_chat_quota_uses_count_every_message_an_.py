"""Chat quota uses (``chat_quota_uses``): every message an end user sends a widget with a
``messages_per_user_per_day`` quota, as the quota counts them (a user message, a retry, a
widget action the agent answers, a client tool's output), kept apart from the threads. The
quota counted the user messages stored in threads, so retries, actions and tool outputs
were not counted, and a deleted thread gave its messages back.

The user messages of the last 24 hours (the quota's window) become uses, so the quota goes
on counting them. Row-level security as on every tenant-owned table (migrations
``5f0c3a7e21b4`` and ``bb42f09518a6``). The downgrade drops the table.

Revision ID: 444ed308c29c
Revises: c91828dac425
Create Date: 2026-12-07 06:36:10.131757
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "444ed308c29c"
down_revision: str | None = "c91828dac425"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WINDOW = timedelta(hours=24)
"""The quota's window (``chat.store.QUOTA_WINDOW_HOURS``)."""
VISIBLE = (
    "tenant_id = NULLIF(current_setting('kithost.tenant_id', true), '')::uuid"
    " OR current_setting('kithost.rls_bypass', true) = 'on'"
)


def _rows(table: str) -> sa.TableClause:
    """The columns of ``table`` (chat items or quota uses) the copy reads or writes."""
    return sa.table(
        table,
        sa.column("id", sa.String()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("widget_id", sa.Uuid()),
        sa.column("end_user_id", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )


ITEMS, USES = _rows("chat_items"), _rows("chat_quota_uses")


def upgrade() -> None:
    op.create_table(
        "chat_quota_uses",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("widget_id", sa.Uuid(), nullable=False),
        sa.Column("end_user_id", sa.String(length=210), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_chat_quota_uses_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["widget_id"],
            ["widgets.id"],
            name=op.f("fk_chat_quota_uses_widget_id_widgets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_quota_uses")),
    )
    with op.batch_alter_table("chat_quota_uses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_chat_quota_uses_owner",
            ["tenant_id", "widget_id", "end_user_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_chat_quota_uses_widget_id"), ["widget_id"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE chat_quota_uses ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE chat_quota_uses FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON chat_quota_uses USING ({VISIBLE})"
            f" WITH CHECK ({VISIBLE})"
        )
    columns = ["id", "tenant_id", "widget_id", "end_user_id", "kind", "created_at"]
    recent = sa.select(
        ITEMS.c.id,
        ITEMS.c.tenant_id,
        ITEMS.c.widget_id,
        ITEMS.c.end_user_id,
        sa.literal("message"),
        ITEMS.c.created_at,
    ).where(ITEMS.c.kind == "user_message", ITEMS.c.created_at >= datetime.now(UTC) - WINDOW)
    op.execute(USES.insert().from_select(columns, recent))


def downgrade() -> None:
    with op.batch_alter_table("chat_quota_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_quota_uses_widget_id"))
        batch_op.drop_index("ix_chat_quota_uses_owner")
    op.drop_table("chat_quota_uses")
