"""Tenant ``acme`` with its owner signed in."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Role
from tests.factories import login, make_member, make_tenant
from tests.widgets.helpers import Acme


@pytest.fixture
async def acme(app: FastAPI, db: AsyncSession) -> Acme:
    tenant = await make_tenant(db, "acme")
    owner = await make_member(db, tenant, Role.owner)
    return Acme(tenant, owner, (await login(app, db, owner)).headers)
