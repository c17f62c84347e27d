"""An import and a publish of the same widget at once, both removing the secret of an MCP
server no tool uses any more: they take the widget's row, then its secrets, in that order
(as publishing does), so one wins and the other is 412; never a deadlock (on PostgreSQL the
import took the secret first, then waited for the row the publish held while it waited for
the secret)."""

from __future__ import annotations

import httpx2
import pytest
from sqlalchemy import select

from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.models import Widget, WidgetMcpSecret
from kithost.settings import Settings
from kithost.widgets.service import create_widget, publish_draft
from tests.factories import client_token, set_draft
from tests.races import at_once, racing_app

WIDGETS = 8
CODE = "a = Agent(name='A', instructions='Help.')\n"


async def test_an_import_and_a_publish_at_once_remove_a_secret_without_deadlock(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with racing_app(settings, monkeypatch) as racing:
        box = racing.app.state.secret_box
        async with racing.arranging() as session:
            tenant = await racing.tenant(session)
            widgets: list[Widget] = []
            for n in range(WIDGETS):
                widget = await create_widget(session, CLI, tenant, name=f"Raced {n}")
                await publish_draft(session, CLI, widget, published_by=None)
                session.add(
                    WidgetMcpSecret(  # a tool since removed from the draft: no tool uses it
                        tenant_id=tenant.id,
                        widget_id=widget.id,
                        tool_id="gone",
                        secret=box.encrypt("Bearer old"),
                        origin="https://gone.acme.example:443",
                    )
                )
                widgets.append(widget)
            await session.flush()
            tags = [f'"{w.revision}"' for w in widgets]
            editor = await client_token(racing.app, session, tenant, [Scope.widgets_write])
        await racing.warm(2 * WIDGETS)
        base = f"/api/v1/tenants/{tenant.slug}/widgets"

        async def act(n: int) -> httpx2.Response:
            widget, headers = widgets[n // 2], {**editor.headers, "If-Match": tags[n // 2]}
            if n % 2:
                return await racing.client.post(f"{base}/{widget.id}/publish", headers=headers)
            return await racing.client.post(
                f"{base}/{widget.id}/agent-import", json={"code": CODE}, headers=headers
            )

        responses = await at_once(2 * WIDGETS, act)

        for pair in range(WIDGETS):
            two = responses[2 * pair : 2 * pair + 2]
            assert sorted(r.status_code for r in two) == [200, 412], [r.text for r in two]
        async with racing.arranging() as session:
            left = await session.scalars(
                select(WidgetMcpSecret).where(WidgetMcpSecret.tenant_id == tenant.id)
            )
            assert left.all() == []


async def test_a_secret_set_while_an_import_removes_its_tool_is_not_left_behind(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setting a secret holds the widget's row, as an import does: either the import removes
    the secret set before it, or the secret finds its tool gone (409); never a secret left of
    a tool no draft or version has (it read the draft from before the import)."""
    tool = {
        "type": "mcp",
        "id": "orders",
        "url": "https://mcp.acme.example/mcp",
        "allowed_tools": ["order_status"],
    }
    async with racing_app(settings, monkeypatch) as racing:
        async with racing.arranging() as session:
            tenant = await racing.tenant(session)
            widgets: list[Widget] = []
            for n in range(WIDGETS):
                widget = await create_widget(session, CLI, tenant, name=f"Raced {n}")
                set_draft(widget, {"agent": {"tools": [tool]}})
                widgets.append(widget)
            await session.flush()
            tags = [f'"{w.revision}"' for w in widgets]
            editor = await client_token(racing.app, session, tenant, [Scope.widgets_write])
        await racing.warm(2 * WIDGETS)
        base = f"/api/v1/tenants/{tenant.slug}/widgets"

        async def act(n: int) -> httpx2.Response:
            widget = widgets[n // 2]
            if n % 2:
                return await racing.client.put(
                    f"{base}/{widget.id}/mcp-secrets/orders",
                    json={"value": "Bearer new"},
                    headers=editor.headers,
                )
            headers = {**editor.headers, "If-Match": tags[n // 2]}
            return await racing.client.post(
                f"{base}/{widget.id}/agent-import", json={"code": CODE}, headers=headers
            )

        responses = await at_once(2 * WIDGETS, act)

        for pair in range(WIDGETS):
            imported, secret = responses[2 * pair : 2 * pair + 2]
            assert imported.status_code == 200, imported.text
            assert secret.status_code in {200, 409}, secret.text
        async with racing.arranging() as session:
            left = await session.scalars(
                select(WidgetMcpSecret.tool_id).where(WidgetMcpSecret.tenant_id == tenant.id)
            )
            assert left.all() == []
