"""Row-level security (``kithost.rls``): a query that forgets its tenant filter, run as the
app's role, finds nothing until the tenant is set, and then only that tenant's rows."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.auth.principals import CLI
from kithost.db import session_scope
from kithost.models import Base, Widget
from kithost.widgets.service import create_widget
from tests.conftest import APP_ROLE
from tests.factories import make_tenant

TENANT_TABLES = sorted(t.name for t in Base.metadata.tables.values() if "tenant_id" in t.c)


async def _widget_names(app: FastAPI, scope: rls.Bypass | Widget | None) -> list[str]:
    """Every widget's name, unfiltered, as the app's role in a unit of work scoped by
    ``scope``: a tenant (of that widget), a bypass or nothing."""
    async with session_scope(app.state.sessionmaker) as session:
        if isinstance(scope, Widget):
            await rls.set_tenant(session, scope.tenant_id)
        elif scope is not None:
            await rls.bypass(session, scope)
        return sorted((await session.execute(select(Widget.name))).scalars())


async def test_an_unscoped_query_finds_only_the_current_tenants_rows(
    app: FastAPI, db: AsyncSession, database_url: str
) -> None:
    acme = await create_widget(db, CLI, await make_tenant(db), name="acme's")
    globex = await create_widget(db, CLI, await make_tenant(db), name="globex's")
    await db.flush()
    both = ["acme's", "globex's"]

    if not database_url.startswith("postgresql"):  # SQLite: nothing changes
        assert await _widget_names(app, None) == both
        assert await _widget_names(app, acme) == both
        return
    assert await _widget_names(app, None) == []
    assert await _widget_names(app, acme) == ["acme's"]
    assert await _widget_names(app, globex) == ["globex's"]
    assert await _widget_names(app, rls.Bypass.sweep) == both
    assert sorted((await db.execute(select(Widget.name))).scalars()) == both  # the owner


async def test_the_scope_outlives_a_commit_and_another_tenants_rows_cannot_be_written(
    app: FastAPI, db: AsyncSession, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row-level security is PostgreSQL's")
    acme, globex = await make_tenant(db), await make_tenant(db)
    await create_widget(db, CLI, globex, name="globex's")
    await db.flush()
    async with app.state.sessionmaker() as session:
        await rls.set_tenant(session, acme.id)
        session.add(Widget(tenant_id=acme.id, name="mine", public_key="pk_mine_0123456789"))
        await session.commit()
        # A new transaction of the same session: still acme's.
        assert (await session.execute(select(Widget.name))).scalars().all() == ["mine"]
        async with rls.bypassing(session, rls.Bypass.credentials):  # one block: every row
            names = (await session.execute(select(Widget.name))).scalars().all()
            assert sorted(names) == ["globex's", "mine"]
        assert (await session.execute(select(Widget.name))).scalars().all() == ["mine"]
        session.add(Widget(tenant_id=globex.id, name="theirs", public_key="pk_theirs_012345"))
        with pytest.raises(DBAPIError, match="row-level security"):
            await session.flush()
        await session.rollback()


async def test_every_tenant_table_binds_the_app_role(db: AsyncSession, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row-level security is PostgreSQL's")
    rows = await db.execute(
        text(
            "SELECT c.relname, c.relrowsecurity, pg_get_userbyid(c.relowner),"
            " (SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname)"
            " FROM pg_class c WHERE c.relkind = 'r' AND c.relname = ANY(:names)"
        ),
        {"names": TENANT_TABLES},
    )
    found = {name: (enabled, owner, policies) for name, enabled, owner, policies in rows}
    assert sorted(found) == TENANT_TABLES
    assert {
        name for name, (enabled, _, policies) in found.items() if not enabled or not policies
    } == set()
    assert APP_ROLE not in {owner for _, owner, _ in found.values()}
    role = await db.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :role"),
        {"role": APP_ROLE},
    )
    assert role.one() == (False, False)
