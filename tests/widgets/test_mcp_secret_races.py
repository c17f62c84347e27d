"""An ``mcp`` tool's secret set by several requests at once, while it has none yet: one adds
it, the others replace it in turn; none answers 500 (the second insert broke the unique
constraint on the widget and tool)."""

from __future__ import annotations

import httpx2
import pytest
from sqlalchemy import select

from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.models import AuditLogEntry, WidgetMcpSecret
from kithost.settings import Settings
from kithost.widgets.service import create_widget
from tests.factories import client_token, set_draft
from tests.races import at_once, racing_app

AT_ONCE = 12
TOOL = {
    "type": "mcp",
    "id": "orders",
    "url": "https://mcp.acme.example/mcp",
    "allowed_tools": ["order_status"],
}


async def test_a_secret_set_at_once_is_added_once_and_replaced_by_the_others(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with racing_app(settings, monkeypatch) as racing:
        async with racing.arranging() as session:
            tenant = await racing.tenant(session)
            widget = await create_widget(session, CLI, tenant, name="Raced")
            set_draft(widget, {"agent": {"tools": [TOOL]}})
            editor = await client_token(racing.app, session, tenant, [Scope.widgets_write])
        await racing.warm(AT_ONCE)
        secret_url = f"/api/v1/tenants/{tenant.slug}/widgets/{widget.id}/mcp-secrets/orders"

        async def put(n: int) -> httpx2.Response:
            body = {"value": f"Bearer secret-{n}"}
            return await racing.client.put(secret_url, json=body, headers=editor.headers)

        responses = await at_once(AT_ONCE, put)

        assert [r.status_code for r in responses] == [200] * AT_ONCE, [r.text for r in responses]
        async with racing.arranging() as session:
            where = WidgetMcpSecret.widget_id == widget.id
            [row] = (await session.scalars(select(WidgetMcpSecret).where(where))).all()
            actions = await session.scalars(
                select(AuditLogEntry.action).where(
                    AuditLogEntry.tenant_id == tenant.id,
                    AuditLogEntry.action.like("widget.mcp_secret_%"),
                )
            )
            assert sorted(actions) == sorted(
                ["widget.mcp_secret_set"] + ["widget.mcp_secret_replaced"] * (AT_ONCE - 1)
            )
        assert row.secret is not None
        written = {f"Bearer secret-{n}" for n in range(AT_ONCE)}
        assert racing.app.state.secret_box.decrypt(row.secret) in written
