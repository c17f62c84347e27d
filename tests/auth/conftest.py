"""A route guarded like the REST API's, for tests of API clients' access tokens."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from kithost.auth.dependencies import WidgetsRead
from kithost.auth.scopes import Scope


@pytest.fixture
def widgets_url(app: FastAPI) -> str:
    """A route of tenant ``acme`` needing ``widgets:read``; it answers who called with what."""

    @app.get("/t/tenants/{tenant}/widgets")
    async def widgets(access: WidgetsRead) -> dict[str, str | list[Scope] | None]:
        return {"client": access.actor.id, "scopes": sorted(access.scopes)}

    return "/t/tenants/acme/widgets"
