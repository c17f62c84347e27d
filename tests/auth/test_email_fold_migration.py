"""Emails stored by the lower-casing rule are folded by the migration to what sign-in
looks up now; two users folding to one address leave the later one as stored, on both
databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select

from kithost import migrate
from kithost.models import Invitation, Role, Tenant, User
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.users.service import normalize_email
from tests.conftest import database_at

BEFORE = "c14c91ad7e69"
"""The revision before stored emails were folded."""

STORED = {
    "straße@x.example": "STRASSE@X.example",
    "ὀδυσσεύς@x.example": "ὈΔΥΣΣΕΎΣ@x.example",
    "ᾳ@x.example": "\N{GREEK CAPITAL LETTER ALPHA}\N{GREEK CAPITAL LETTER IOTA}@x.example",
    "plain@x.example": "Plain@X.example",
}
"""Addresses as the old rule stored them, with one typed at sign-in for each."""


@pytest.fixture(params=["postgresql", "sqlite"])
def before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A new database migrated up to :data:`BEFORE`."""
    with database_at(BEFORE, request.param, tmp_path) as settings:
        yield settings


def test_stored_emails_are_found_by_the_address_typed_at_sign_in(
    before: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(before.database.replace("+aiosqlite", ""))
    now = utcnow()
    ids = {email: uuid.uuid4() for email in STORED}
    first, later = uuid.uuid4(), uuid.uuid4()
    try:
        with engine.begin() as connection:
            for email, user_id in ids.items():
                connection.execute(insert(User).values(id=user_id, email=email, created_at=now))
            # Two users of one mailbox under the new rule: the earlier-created one gets it.
            connection.execute(
                insert(User).values(id=first, email="maßς@y.example", created_at=now)
            )
            connection.execute(
                insert(User).values(
                    id=later, email="massς@y.example", created_at=now + timedelta(seconds=1)
                )
            )
            tenant = uuid.uuid4()
            connection.execute(insert(Tenant).values(id=tenant, slug="acme", name="A"))
            for email in ("straße@x.example", "strasse@x.example"):
                connection.execute(
                    insert(Invitation).values(
                        tenant_id=tenant,
                        email=email,
                        role=Role.viewer,
                        token_hash=uuid.uuid4().hex,
                        expires_at=now,
                    )
                )
        with caplog.at_level("WARNING"):
            migrate.upgrade(before)
        with engine.connect() as connection:
            found = {
                stored: connection.execute(
                    select(User.id).where(User.email == normalize_email(typed))
                ).scalar_one_or_none()
                for stored, typed in STORED.items()
            }
            emails = {row.id: row.email for row in connection.execute(select(User.id, User.email))}
            invited = connection.execute(select(Invitation.email)).scalars().all()
    finally:
        engine.dispose()
    assert found == ids
    assert (emails[first], emails[later]) == (
        "mass\N{GREEK SMALL LETTER SIGMA}@y.example",
        "massς@y.example",
    )
    assert str(later) in caplog.text
    assert invited == ["strasse@x.example", "strasse@x.example"]
