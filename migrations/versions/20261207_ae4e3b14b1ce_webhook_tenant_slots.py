"""Webhook tenant slots (``webhook_tenant_slots``): a tenant's slow endpoints take one
attempt at a time all together, not one each; the row is there while an attempt holds the
tenant's slot. Row-level security as on every tenant-owned table (migrations
``5f0c3a7e21b4`` and ``bb42f09518a6``). The downgrade drops the table.

Revision ID: ae4e3b14b1ce
Revises: 66fd0ee242c4
Create Date: 2026-12-07 18:19:41.690693
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ae4e3b14b1ce"
down_revision: str | None = "66fd0ee242c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VISIBLE = (
    "tenant_id = NULLIF(current_setting('kithost.tenant_id', true), '')::uuid"
    " OR current_setting('kithost.rls_bypass', true) = 'on'"
)


def upgrade() -> None:
    op.create_table(
        "webhook_tenant_slots",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("held_until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_webhook_tenant_slots_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_webhook_tenant_slots")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE webhook_tenant_slots ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE webhook_tenant_slots FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON webhook_tenant_slots USING ({VISIBLE})"
            f" WITH CHECK ({VISIBLE})"
        )


def downgrade() -> None:
    op.drop_table("webhook_tenant_slots")
