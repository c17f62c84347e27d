"""Webhook deliveries name the chat thread they are about, so that deleting a thread
deletes its deliveries (an anonymous visitor's carry no end user: once the thread was gone,
the end-user erase found them no more).

Existing deliveries get theirs from the payload (``data.thread_id``; a ``conversation.idle``
transcript's ``data.id``), and those of threads deleted before go now, as they would have.

Revision ID: fb937bd01859
Revises: f932ae70e725
Create Date: 2026-12-07 03:46:17.795489
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fb937bd01859"
down_revision: str | None = "f932ae70e725"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DELIVERIES = sa.table(
    "webhook_deliveries",
    sa.column("event_type", sa.String()),
    sa.column("payload", sa.JSON()),
    sa.column("thread_id", sa.String()),
)
THREADS = sa.table("chat_threads", sa.column("id", sa.String()))


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.add_column(sa.Column("thread_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_thread_id"), ["thread_id"])
    data = DELIVERIES.c.payload["data"]
    op.execute(
        DELIVERIES.update().values(
            thread_id=sa.case(
                (DELIVERIES.c.event_type == "conversation.idle", data["id"].as_string()),
                else_=data["thread_id"].as_string(),
            )
        )
    )
    op.execute(
        DELIVERIES.delete().where(
            DELIVERIES.c.thread_id.is_not(None),
            DELIVERIES.c.thread_id.not_in(sa.select(THREADS.c.id)),
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_thread_id"))
        batch_op.drop_column("thread_id")
