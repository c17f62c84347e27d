"""Chat items lose the quota index: the daily message quota counts its own rows
(``chat_quota_uses``, migration 444ed308c29c), and nothing else reads items by end user and
kind; each item written kept it up to date for nothing.

Revision ID: eabf5a103fd0
Revises: 444ed308c29c
Create Date: 2026-12-07 06:59:42.034877
"""

from collections.abc import Sequence

from alembic import op

revision: str = "eabf5a103fd0"
down_revision: str | None = "444ed308c29c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["tenant_id", "widget_id", "end_user_id", "kind", "created_at"]


def upgrade() -> None:
    op.drop_index("ix_chat_items_quota", table_name="chat_items")


def downgrade() -> None:
    op.create_index("ix_chat_items_quota", "chat_items", COLUMNS)
