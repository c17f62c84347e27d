"""The hosted mints' row writer: rows waiting together share one transaction, and a bad
row never costs the others theirs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from kithost.auth.principals import CLI
from kithost.kit.tokens import hash_secret
from kithost.models import SessionMint, Widget, WidgetMode
from kithost.models.base import utcnow
from kithost.sessions.recorder import MintRecorder
from kithost.widgets.service import create_widget
from tests.conftest import state_of
from tests.factories import make_tenant


async def widget(db: AsyncSession) -> Widget:
    made = await create_widget(db, CLI, await make_tenant(db), name="chat")
    await db.flush()
    return made


def row(of: Widget, secret: str) -> dict[str, Any]:
    return {
        "created_at": utcnow(),
        "tenant_id": of.tenant_id,
        "widget_id": of.id,
        "end_user_id": "a:anon_" + "d" * 24,
        "origin": "https://shop.example.com",
        "mode": WidgetMode.hosted,
        "secret_hash": hash_secret(secret),
    }


@pytest.fixture
def commits() -> Iterator[list[None]]:
    """One entry per committed unit of work, while the test runs."""
    seen: list[None] = []

    def committed(_session: Session) -> None:
        seen.append(None)

    event.listen(Session, "after_commit", committed)
    yield seen
    event.remove(Session, "after_commit", committed)


async def recorded(
    recorder: MintRecorder, db: AsyncSession, rows: list[dict[str, Any]]
) -> set[str]:
    await asyncio.gather(*(recorder.record(r) for r in rows))
    hashes = await db.execute(select(SessionMint.secret_hash))
    return {h for h in hashes.scalars() if h is not None}


async def test_rows_waiting_together_share_one_commit(
    app: FastAPI, db: AsyncSession, commits: list[None]
) -> None:
    shop = await widget(db)
    await db.commit()
    commits.clear()
    recorder = state_of(app).part(MintRecorder)
    secrets = [f"ek_{n}" for n in range(5)]
    assert await recorded(recorder, db, [row(shop, s) for s in secrets]) == {
        hash_secret(s) for s in secrets
    }
    assert len(commits) == 1


async def test_a_bad_row_is_logged_and_the_others_written(
    app: FastAPI, db: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    shop, gone = await widget(db), await widget(db)
    await db.execute(delete(Widget).where(Widget.id == gone.id))
    await db.commit()
    rows = [row(shop, "ek_first"), row(gone, "ek_orphan"), row(shop, "ek_last")]
    with caplog.at_level(logging.ERROR):
        written = await recorded(state_of(app).part(MintRecorder), db, rows)
    assert written == {hash_secret("ek_first"), hash_secret("ek_last")}
    logged = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    assert [(m["event"], m["widget_id"]) for m in logged] == [
        ("hosted_mint_not_recorded", str(gone.id))
    ]


async def test_closing_writes_the_rows_still_waiting(app: FastAPI, db: AsyncSession) -> None:
    """What the lifespan does as the process stops: no row handed in is left behind."""
    shop = await widget(db)
    await db.commit()
    recorder = state_of(app).part(MintRecorder)
    secrets = [f"ek_{n}" for n in range(3)]
    pending = [asyncio.ensure_future(recorder.record(row(shop, s))) for s in secrets]
    await asyncio.sleep(0)  # handed in, not yet written
    await recorder.aclose()
    assert all(task.done() for task in pending)
    hashes = await db.execute(select(SessionMint.secret_hash))
    assert {hash_secret(s) for s in secrets} <= set(hashes.scalars())
