"""Row-level security (``kithost.rls``): a query that forgets its tenant filter, run as the
app's role, finds nothing until the tenant is set, and then only that tenant's rows."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import migrate, rls
from kithost.app import create_app
from kithost.auth.principals import CLI
from kithost.db import session_scope
from kithost.models import Base, Widget
from kithost.settings import Environment, Settings
from kithost.widgets.service import create_widget
from tests.conftest import (
    APP_ROLE,
    PG_ADMIN_URL,
    create_pg_database,
    drop_pg_database,
    state_of,
)
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
            "SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity,"
            " pg_get_userbyid(c.relowner),"
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


@pytest.fixture
def owners_database(tmp_path: Path) -> Iterator[Settings]:
    """A database migrated by a role that owns its tables and is no superuser, and the app
    connecting as that same role (``KITHOST_MIGRATION_DATABASE_URL`` unset)."""
    owner, url = f"kithost_owner_{secrets.token_hex(4)}", create_pg_database()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS")
        conn.execute(f'ALTER DATABASE "{name}" OWNER TO {owner}')
        conn.execute(f'GRANT CREATE ON DATABASE "{name}" TO {owner}')
    with psycopg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", autocommit=True) as conn:
        conn.execute(f"ALTER SCHEMA public OWNER TO {owner}")
    owners = make_url(url).set(username=owner).render_as_string(hide_password=False)
    settings = Settings(data_dir=tmp_path, database_url=owners)
    try:
        migrate.upgrade(settings)
        yield settings
    finally:
        drop_pg_database(url)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {owner}")


def test_the_policy_binds_an_app_connecting_as_the_tables_owner(
    owners_database: Settings,
) -> None:
    url = make_url(owners_database.database).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute("SELECT set_config('kithost.rls_bypass', 'on', false)")
        for slug in ("acme", "globex"):
            conn.execute(
                "WITH t AS (INSERT INTO tenants (id, slug, name, created_at, updated_at)"
                " VALUES (gen_random_uuid(), %s, %s, now(), now()) RETURNING id)"
                " INSERT INTO analytics_settings (tenant_id, retention_days) SELECT id, 30 FROM t",
                (slug, slug),
            )
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        owned = conn.execute("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
        assert owned.fetchone() == (len(Base.metadata.tables) + 1,), "the owner's, search's too"
        unscoped = conn.execute("SELECT count(*) FROM analytics_settings")
        assert unscoped.fetchone() == (0,)
        acme = conn.execute("SELECT id FROM tenants WHERE slug = 'acme'").fetchone()
        assert acme is not None
        conn.execute("SELECT set_config('kithost.tenant_id', %s, false)", (str(acme[0]),))
        assert conn.execute("SELECT count(*) FROM analytics_settings").fetchone() == (1,)


async def test_in_production_the_api_refuses_a_user_the_policy_cannot_bind(
    settings: Settings, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row-level security is PostgreSQL's")
    superuser = make_url(settings.database).set(username="postgres")
    unbound = {"database_url": superuser.render_as_string(hide_password=False)}
    for env, answered in [(Environment.production, 503), (Environment.development, 200)]:
        app = create_app(settings.model_copy(update={"env": env, **unbound}))
        transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(2):  # every connection, not only the first
                ready = await client.get("/readyz")
                assert ready.status_code == answered, (env, ready.text)
        await state_of(app).aclose()
    bound = create_app(settings.model_copy(update={"env": Environment.production}))
    transport = httpx2.ASGITransport(app=bound)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/readyz")).status_code == 200
    await state_of(bound).aclose()
