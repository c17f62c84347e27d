"""Invitations name the API client that made them (``invited_by_client_id``), so that
revoking the client withdraws its pending ones, as removing a member withdraws theirs.

Invitations made before get their client from the audit log (``invitation.created`` by a
client names the client and the invitation), and the pending ones of clients revoked
before go now, as they would have. The downgrade drops the column only.

Revision ID: c91828dac425
Revises: f486ee6ab118
Create Date: 2026-12-07 05:45:58.349053
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c91828dac425"
down_revision: str | None = "f486ee6ab118"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INVITATIONS = sa.table(
    "invitations",
    sa.column("id", sa.Uuid()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("accepted_at", sa.DateTime(timezone=True)),
    sa.column("invited_by_client_id", sa.Uuid()),
)
CLIENTS = sa.table(
    "api_clients",
    sa.column("id", sa.Uuid()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("client_id", sa.String()),
    sa.column("revoked_at", sa.DateTime(timezone=True)),
)
AUDIT = sa.table(
    "audit_log_entries",
    sa.column("tenant_id", sa.Uuid()),
    sa.column("actor_type", sa.String()),
    sa.column("actor_id", sa.String()),
    sa.column("action", sa.String()),
    sa.column("target_id", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("invitations") as batch_op:
        batch_op.add_column(sa.Column("invited_by_client_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_invitations_invited_by_client_id_api_clients"),
            "api_clients",
            ["invited_by_client_id"],
            ["id"],
            ondelete="SET NULL",
        )
    bind = op.get_bind()
    clients = {
        (tenant_id, client_id): (id, revoked_at is not None)
        for id, tenant_id, client_id, revoked_at in bind.execute(
            sa.select(CLIENTS.c.id, CLIENTS.c.tenant_id, CLIENTS.c.client_id, CLIENTS.c.revoked_at)
        )
    }
    made = bind.execute(
        sa.select(AUDIT.c.tenant_id, AUDIT.c.actor_id, AUDIT.c.target_id).where(
            AUDIT.c.action == "invitation.created", AUDIT.c.actor_type == "client"
        )
    )
    for tenant_id, client_id, target_id in made:
        client = clients.get((tenant_id, client_id))
        try:
            invitation_id = uuid.UUID(target_id)
        except (TypeError, ValueError):
            continue
        if client is None:
            continue
        id, revoked = client
        invitation = INVITATIONS.c.id == invitation_id
        if revoked:
            bind.execute(
                INVITATIONS.delete().where(invitation, INVITATIONS.c.accepted_at.is_(None))
            )
        bind.execute(INVITATIONS.update().where(invitation).values(invited_by_client_id=id))


def downgrade() -> None:
    with op.batch_alter_table("invitations") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_invitations_invited_by_client_id_api_clients"), type_="foreignkey"
        )
        batch_op.drop_column("invited_by_client_id")
