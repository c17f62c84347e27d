"""Row-level security binds the tables' owner too (``FORCE``): a deployment whose app
connects as the user that migrates (``KITHOST_MIGRATION_DATABASE_URL`` unset) is bound as
the app's own role is. Only superusers and roles with BYPASSRLS pass it, and production processes
refuse to work as one (``kithost.rls.check_binding``). Migrations bypass it for
their own session (``migrations/env.py``).

Revision ID: bb42f09518a6
Revises: b1d9b8adfba6
Create Date: 2026-12-07 05:58:03.811530
"""

from collections.abc import Sequence

from alembic import op

revision: str = "bb42f09518a6"
down_revision: str | None = "b1d9b8adfba6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICED = (
    "SELECT tablename FROM pg_policies"
    " WHERE policyname = 'tenant_isolation' AND schemaname = current_schema()"
)
"""The tables under the tenant policy (migration ``5f0c3a7e21b4`` and those since)."""


def _force(clause: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for (table,) in bind.exec_driver_sql(POLICED).all():
        op.execute(f'ALTER TABLE "{table}" {clause} ROW LEVEL SECURITY')


def upgrade() -> None:
    _force("FORCE")


def downgrade() -> None:
    _force("NO FORCE")
