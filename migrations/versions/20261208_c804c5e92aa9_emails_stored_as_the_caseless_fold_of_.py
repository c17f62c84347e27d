"""Emails are stored as ``normalize_email`` makes them since the local part is folded for
caseless matching (full case folding between NFKC normalizations), not lower-cased: the
addresses of users and invitations stored by the old rule whose local part folds to
something else (``straße`` is ``strasse``, a final sigma a medial one, an iota subscript
an iota) are recomputed, else the address typed at sign-in, normalized the new way, no
longer finds its account (nor an invitation its invitee).

:func:`_normalized` is ``kithost.users.service.normalize_email`` as it is at this
revision, frozen here (migrations never import application code). A user whose new
address another user already holds, or that an earlier-created user folds to as well (the
unique ``users.email``), keeps the stored one; so does an address the new rule refuses
(folding made it too long). Both are logged with the user's id, for an operator to settle.
The downgrade keeps the folded addresses: the old rule's lower-casing finds them too.

Revision ID: c804c5e92aa9
Revises: c14c91ad7e69
Create Date: 2026-12-08 00:45:51.418064
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from email_validator import EmailNotValidError, ValidatedEmail, validate_email

revision: str = "c804c5e92aa9"
down_revision: str | None = "c14c91ad7e69"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

USERS = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("email", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
INVITATIONS = sa.table("invitations", sa.column("id", sa.Uuid()), sa.column("email", sa.String()))


def _validated(email: str) -> ValidatedEmail:
    return validate_email(email, check_deliverability=False, test_environment=True)


def _caseless(text: str) -> str:
    for _ in range(4):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        if folded == text:
            break
        text = folded
    return text


def _normalized(email: str) -> str | None:
    """``email`` as the app normalizes it at this revision, or None if it refuses it."""
    try:
        valid = _validated(unicodedata.normalize("NFKC", email.strip()))
        local = _caseless(valid.local_part)
        if local != valid.local_part:
            valid = _validated(f"{local}@{valid.domain}")
    except EmailNotValidError:
        return None
    return valid.normalized


def upgrade() -> None:
    bind = op.get_bind()
    users = bind.execute(
        sa.select(USERS.c.id, USERS.c.email).order_by(USERS.c.created_at, USERS.c.id)
    ).all()
    taken = {email for _, email in users}
    changes: list[dict[str, object]] = []
    for user_id, email in users:
        new = _normalized(email)
        if new is None:
            log.warning("users.email of %s left as stored: the new rule refuses it", user_id)
        elif new != email and new in taken:
            log.warning("users.email of %s left as stored: another user has %r", user_id, new)
        elif new != email:
            taken.add(new)
            changes.append({"row": user_id, "new": new})
    _set_emails(USERS, changes)
    invitations = bind.execute(sa.select(INVITATIONS.c.id, INVITATIONS.c.email)).all()
    changes = [
        {"row": row, "new": new}
        for row, email in invitations
        if (new := _normalized(email)) is not None and new != email
    ]
    _set_emails(INVITATIONS, changes)


def _set_emails(table: sa.TableClause, changes: list[dict[str, object]]) -> None:
    if changes:
        op.get_bind().execute(
            table.update()
            .where(table.c.id == sa.bindparam("row"))
            .values(email=sa.bindparam("new")),
            changes,
        )


def downgrade() -> None:
    pass
