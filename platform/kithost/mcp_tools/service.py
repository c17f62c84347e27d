"""The secrets of widgets' ``mcp`` tools and listing their servers' tools.

A secret belongs to a tool of a widget (its id) and to the server's origin when it was set
(``kit.outbound.origin_of``): it is sent nowhere else, so pointing the tool at another server
does not take the secret along. Stored encrypted; the API says only that one is set.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth.principals import Actor, TenantAccess
from kithost.db import Sessionmaker, session_scope
from kithost.errors import BadGateway, Conflict, invalid_field
from kithost.kit.crypto import SecretBox
from kithost.kit.outbound import origin_of
from kithost.kit.schemas import has_nul
from kithost.kit.visible import has_invisible
from kithost.mcp_tools import repository
from kithost.mcp_tools.client import (
    McpConnections,
    McpConnector,
    McpSecret,
    McpUnavailable,
)
from kithost.models import Widget, WidgetMcpSecret
from kithost.visitor.service import Published
from kithost.widgets.config import McpTool
from kithost.widgets.service import TOOLS, SecretFate, get_widget, owns_tool_secrets


@dataclass(frozen=True)
class SecretState:
    """What anyone sees of a tool's secret: that it is set, and for which origin."""

    tool_id: str
    origin: str
    updated_at: datetime


@dataclass(frozen=True)
class ServerTool:
    name: str
    description: str | None
    input_schema: dict[str, Any]
    allowed: bool


@dataclass(frozen=True)
class Discovery:
    tool_id: str
    tools: list[ServerTool]
    missing_tools: list[str]
    """Allowed names the server does not have."""


def _state(row: WidgetMcpSecret) -> SecretState:
    return SecretState(row.tool_id, row.origin, row.updated_at)


def _draft_tool(widget: Widget, tool_id: str) -> tuple[int, McpTool]:
    """The draft's ``mcp`` tool ``tool_id`` and its index; 409 when there is none."""
    tools = widget.draft.get("agent", {}).get("tools", [])
    for index, tool in enumerate(tools):
        if isinstance(tool, dict) and tool.get("type") == "mcp" and tool.get("id") == tool_id:
            try:
                return index, McpTool.model_validate(tool)
            except ValidationError:
                break
    raise Conflict(
        f"The widget's draft has no mcp tool {tool_id!r}: save it in the draft first.",
        code="mcp_tool_not_in_draft",
    )


async def secret_states(
    session: AsyncSession, access: TenantAccess, widget_id: uuid.UUID
) -> list[SecretState]:
    widget = await get_widget(session, access.tenant, widget_id)
    return [_state(r) for r in await repository.secrets(session, widget.tenant_id, widget.id)]


async def set_secret(
    session: AsyncSession,
    box: SecretBox,
    access: TenantAccess,
    widget_id: uuid.UUID,
    tool_id: str,
    value: str,
) -> SecretState:
    """Store the secret of the draft's ``mcp`` tool ``tool_id`` (replacing any), bound to the
    origin of the tool's URL in the draft. The widget's row is held first (as a change to
    the draft takes it, then the secrets: an import removing the tool meanwhile ends first,
    and the tool is then not in the draft), then the tool's row is locked (or added, once:
    of writes at once, the others wait and replace it), so writes at once replace one
    another in turn."""
    widget = await get_widget(session, access.tenant, widget_id, hold=True)
    _, tool = _draft_tool(widget, tool_id)
    origin = origin_of(str(tool.url))
    secret = box.encrypt(value)
    after = {"has_secret": True, "origin": origin}
    tenant_id = widget.tenant_id
    row = await repository.secret(session, tenant_id, widget.id, tool_id, lock=True)
    if row is None:
        if await repository.add_secret(session, tenant_id, widget.id, tool_id, secret, origin):
            added = await repository.secret(session, tenant_id, widget.id, tool_id)
            assert added is not None
            before: dict[str, Any] = {"has_secret": False}
            _record(session, access.actor, widget, "widget.mcp_secret_set", tool_id, before, after)
            return _state(added)
        # Added by another request meanwhile (committed: the insert waited for it).
        row = await repository.secret(session, tenant_id, widget.id, tool_id, lock=True)
        if row is None:  # and removed again since
            raise Conflict(
                "The tool's secret changed meanwhile; try again.", code="mcp_secret_changed"
            )
    before = {"has_secret": True, "origin": row.origin}
    row.secret, row.origin = secret, origin
    await session.flush()
    _record(session, access.actor, widget, "widget.mcp_secret_replaced", tool_id, before, after)
    return _state(row)


async def remove_secret(
    session: AsyncSession, access: TenantAccess, widget_id: uuid.UUID, tool_id: str
) -> None:
    """Forget the tool's secret; without one, nothing changes."""
    widget = await get_widget(session, access.tenant, widget_id)
    if await repository.remove_secret(session, widget.tenant_id, widget.id, tool_id):
        after = {"has_secret": False}
        before = {"has_secret": True}
        _record(session, access.actor, widget, "widget.mcp_secret_removed", tool_id, before, after)


def _record(
    session: AsyncSession,
    actor: Actor,
    widget: Widget,
    action: str,
    tool_id: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    audit.record(
        session,
        actor,
        action,
        tenant_id=widget.tenant_id,
        target_type="widget",
        target_id=widget.id,
        data={"tool_id": tool_id, **audit.changes(before, after)},
    )


async def forget_unused(
    session: AsyncSession,
    actor: Actor,
    widget: Widget,
    used: set[tuple[str, str]],
    dry_run: bool,
) -> dict[str, SecretFate]:
    """Remove (unless ``dry_run``) the widget's secrets whose tool and server, ``(tool id,
    origin)``, are not ``used`` (by the draft or the published version), each audited as a
    removal; each secret's fate by tool id (``widgets.service.owns_tool_secrets``)."""
    fates: dict[str, SecretFate] = {}
    for row in await repository.secrets(session, widget.tenant_id, widget.id):
        unused = (row.tool_id, row.origin) not in used
        if unused and not dry_run:
            # Only the secret for that server: one set for another meanwhile stays.
            unused = await repository.remove_secret(
                session, widget.tenant_id, widget.id, row.tool_id, origin=row.origin
            )
            if unused:
                before = {"has_secret": True, "origin": row.origin}
                after = {"has_secret": False}
                _record(
                    session, actor, widget, "widget.mcp_secret_removed", row.tool_id, before, after
                )
        fates[row.tool_id] = SecretFate(row.origin, removed=unused)
    return fates


owns_tool_secrets(forget_unused)


async def widget_secrets(
    session: AsyncSession, box: SecretBox, tenant_id: uuid.UUID, widget_id: uuid.UUID
) -> dict[str, McpSecret]:
    """The widget's ``mcp`` secrets by tool id, decrypted."""
    return {
        row.tool_id: McpSecret(box.decrypt(row.secret), row.origin)
        for row in await repository.secrets(session, tenant_id, widget_id)
        if row.secret is not None
    }


async def discover(
    session: AsyncSession,
    box: SecretBox,
    connector: McpConnector,
    access: TenantAccess,
    widget_id: uuid.UUID,
    tool_id: str,
) -> Discovery:
    """Connect to the server of the draft's ``mcp`` tool ``tool_id`` (with its secret) and
    list its tools (but those holding a NUL character, or a name with an invisible one),
    holding no database connection meanwhile: 422 ``outbound_refused`` on the tool's
    ``url``, 409 ``mcp_secret_stale`` (the URL changed since the secret was set), 502
    ``mcp_timeout`` or ``mcp_unavailable``."""
    widget = await get_widget(session, access.tenant, widget_id)
    index, tool = _draft_tool(widget, tool_id)
    secrets = await widget_secrets(session, box, widget.tenant_id, widget.id)
    # All it reads is read: the unit of work ends before the server's turn (up to twice the
    # tool's timeout, and closing), so a slow server holds no database connection.
    await session.commit()
    try:
        listed = await connector.discover(tool, secrets.get(tool_id))
    except McpUnavailable as exc:
        if exc.kind == "refused":
            raise invalid_field(f"{TOOLS}.{index}.url", exc.reason, "outbound_refused") from exc
        if exc.kind == "secret":
            raise Conflict(exc.reason, code="mcp_secret_stale") from exc
        code = "mcp_timeout" if exc.kind == "timeout" else "mcp_unavailable"
        raise BadGateway(exc.reason, code=code) from exc
    allowed = set(tool.allowed_tools)
    names = {info.name for info in listed}
    # A tool holding a NUL character can be neither stored (allowed_tools) nor shown; one
    # whose name reorders or hides what people read (a bidi override), never allowed, is
    # not shown either.
    shown = [
        i
        for i in listed
        if not has_nul([i.name, i.description or "", i.input_schema]) and not has_invisible(i.name)
    ]
    return Discovery(
        tool_id,
        [
            ServerTool(info.name, info.description, dict(info.input_schema), info.name in allowed)
            for info in shown
        ],
        [name for name in tool.allowed_tools if name not in names],
    )


def answer_connections(
    sessionmaker: Sessionmaker, box: SecretBox, connector: McpConnector, widget: Published
) -> McpConnections | None:
    """The published agent's MCP servers for one answer, to open (None: it has none)."""
    tools = [t for t in widget.widget_config.agent.tools if isinstance(t, McpTool)]
    if not tools:
        return None

    async def secrets() -> dict[str, McpSecret]:
        async with session_scope(sessionmaker, tenant=widget.tenant_id) as session:
            return await widget_secrets(session, box, widget.tenant_id, widget.widget_id)

    return McpConnections(connector, tools, secrets)
