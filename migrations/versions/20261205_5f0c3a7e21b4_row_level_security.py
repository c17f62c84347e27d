"""Row-level security on every tenant-owned table (PostgreSQL; nothing on SQLite).

A row is visible and writable only when its ``tenant_id`` is the transaction's
``kithost.tenant_id`` setting, or when the transaction set ``kithost.rls_bypass`` to
``on`` (``kithost.rls``). Not forced: the tables' owner (who runs the migrations) is not
bound; the app connects as a role that owns nothing and lacks BYPASSRLS. Platform entries of
the audit log (no tenant) may be written from a tenant's transaction, read only bypassing.

Revision ID: 5f0c3a7e21b4
Revises: c3f1a9d27e64
Create Date: 2026-12-05 19:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5f0c3a7e21b4"
down_revision: str | None = "c3f1a9d27e64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "allowed_origins",
    "analytics_events",
    "analytics_pending_rollups",
    "analytics_rollups",
    "analytics_settings",
    "api_clients",
    "audit_log_entries",
    "chat_attachments",
    "chat_items",
    "chat_threads",
    "conversation_exports",
    "conversation_reviews",
    "error_group_users",
    "error_groups",
    "invitations",
    "knowledge_bases",
    "knowledge_documents",
    "memberships",
    "session_mints",
    "webhook_deliveries",
    "webhook_endpoints",
    "webhook_idle_marks",
    "widget_mcp_secrets",
    "widget_versions",
    "widgets",
)
VISIBLE = (
    "tenant_id = NULLIF(current_setting('kithost.tenant_id', true), '')::uuid"
    " OR current_setting('kithost.rls_bypass', true) = 'on'"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        check = f"tenant_id IS NULL OR {VISIBLE}" if table == "audit_log_entries" else VISIBLE
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING ({VISIBLE}) WITH CHECK ({check})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
