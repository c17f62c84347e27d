"""The tenant ``acme`` and one of its editors."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Role, Tenant
from tests.factories import Credentials, login, make_member, make_tenant


@pytest.fixture
async def acme(db: AsyncSession) -> Tenant:
    return await make_tenant(db, "acme")


@pytest.fixture
async def editor(app: FastAPI, db: AsyncSession, acme: Tenant) -> Credentials:
    return await login(app, db, await make_member(db, acme, Role.editor))
