"""Error groups' end users are kept as a hash of their id with their latest occurrence: the
raw id of an anonymous one (``a:…``) is a credential (it mints their sessions), and rows
outlived the retention while the group kept recurring for others. Each stored row gets the
latest ``client.error`` its end user still has on the group's widget among the raw events
(at most later than their latest occurrence of this very group, never past their events'
retention); a row whose end user has none left met the group before the retention and is
deleted. The id becomes ``sha256("error-group-user:<tenant id>:<end user id>")``
(``kithost.analytics.errors.repository.end_user_hash``). The downgrade has no ids to put
back: the hashes stay in ``end_user_id``, still counting end users apart.

Revision ID: f486ee6ab118
Revises: bb42f09518a6
Create Date: 2026-12-07 05:43:58.408372
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f486ee6ab118"
down_revision: str | None = "bb42f09518a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USERS = sa.table(
    "error_group_users",
    sa.column("group_id", sa.Uuid()),
    sa.column("end_user_id", sa.String()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("last_seen", sa.DateTime(timezone=True)),
)
GROUPS = sa.table("error_groups", sa.column("id", sa.Uuid()), sa.column("widget_id", sa.Uuid()))
EVENTS = sa.table(
    "analytics_events",
    sa.column("tenant_id", sa.Uuid()),
    sa.column("widget_id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("end_user_id", sa.String()),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
)


def _hash(tenant_id: object, end_user_id: str) -> str:
    return hashlib.sha256(f"error-group-user:{tenant_id}:{end_user_id}".encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("error_group_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True))
    latest = (
        sa.select(sa.func.max(EVENTS.c.occurred_at))
        .select_from(EVENTS.join(GROUPS, GROUPS.c.widget_id == EVENTS.c.widget_id))
        .where(
            GROUPS.c.id == USERS.c.group_id,
            EVENTS.c.tenant_id == USERS.c.tenant_id,
            EVENTS.c.end_user_id == USERS.c.end_user_id,
            EVENTS.c.name == "client.error",
        )
        .scalar_subquery()
    )
    bind = op.get_bind()
    bind.execute(USERS.update().values(last_seen=latest))
    bind.execute(USERS.delete().where(USERS.c.last_seen.is_(None)))
    rows = bind.execute(sa.select(USERS.c.tenant_id, USERS.c.group_id, USERS.c.end_user_id)).all()
    if rows:
        bind.execute(
            USERS.update()
            .where(
                USERS.c.group_id == sa.bindparam("group"),
                USERS.c.end_user_id == sa.bindparam("raw"),
            )
            .values(end_user_id=sa.bindparam("hashed")),
            [
                {"group": group_id, "raw": raw, "hashed": _hash(tenant_id, raw)}
                for tenant_id, group_id, raw in rows
            ],
        )
    with op.batch_alter_table("error_group_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_error_group_users_tenant_id"))
    with op.batch_alter_table("error_group_users", schema=None) as batch_op:
        batch_op.alter_column(
            "end_user_id",
            new_column_name="end_user_hash",
            existing_type=sa.String(length=210),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
        batch_op.alter_column("last_seen", existing_type=sa.DateTime(timezone=True), nullable=False)
    with op.batch_alter_table("error_group_users", schema=None) as batch_op:
        batch_op.create_index(
            "ix_error_group_users_end_user", ["tenant_id", "end_user_hash"], unique=False
        )
        batch_op.create_index("ix_error_group_users_age", ["tenant_id", "last_seen"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("error_group_users", schema=None) as batch_op:
        batch_op.drop_index("ix_error_group_users_age")
        batch_op.drop_index("ix_error_group_users_end_user")
        batch_op.alter_column(
            "end_user_hash",
            new_column_name="end_user_id",
            existing_type=sa.String(length=64),
            type_=sa.String(length=210),
            existing_nullable=False,
        )
        batch_op.drop_column("last_seen")
    with op.batch_alter_table("error_group_users", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_error_group_users_tenant_id"), ["tenant_id", "end_user_id"], unique=False
        )
