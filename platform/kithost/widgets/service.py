"""Widgets: the draft a tenant edits, the versions it publishes, the origins allowed to show it.

Every change to a widget's row bumps ``widgets.revision`` (SQLAlchemy's version counter):
edits, publishing, and origin changes, which touch the row for that reason. The revision
is the widget's ETag. Changing the draft or publishing needs ``If-Match`` with it, and the
version counter makes the database refuse the second of two writers that read the same
revision, so concurrent writers never both win.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from kithost.audit import service as audit
from kithost.auth.principals import Actor, TenantAccess, UserPrincipal
from kithost.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    invalid_field,
)
from kithost.kit.crypto import SecretBox
from kithost.kit.origins import InvalidOrigin, normalize_pattern
from kithost.kit.outbound import OutboundPolicy, origin_of
from kithost.kit.tokens import random_token
from kithost.kit.visible import INVISIBLE_MESSAGE, INVISIBLE_TYPE, has_invisible
from kithost.models import AllowedOrigin, Tenant, User, Widget, WidgetMode, WidgetVersion
from kithost.models.base import utcnow
from kithost.settings import Settings
from kithost.webhooks import service as webhooks
from kithost.widgets import repository
from kithost.widgets.adoption import adopt_vector_stores
from kithost.widgets.agent_import import ImportedAgent, ImportRefused, read_export
from kithost.widgets.config import (
    ClientTool,
    FileSearch,
    HttpTool,
    McpTool,
    ModelApi,
    WidgetConfig,
    parse_config,
)
from kithost.widgets.convert import Conversion, convert
from kithost.widgets.handoffs import check_handoffs
from kithost.widgets.redaction import HIDDEN, redacted, restored

ORIGIN_MAX_LENGTH = 255
"""The length of ``allowed_origins.origin``."""
AGENT_BUILDER_RETIRED = (
    "OpenAI shut Agent Builder down on 2026-11-30: no widget becomes hosted (Kithost runs "
    "self-hosted widgets' agents); hosted ones convert with POST …/widgets/{id}/convert."
)
KEPT_AGENT = ("base_url", "model_api", "messages_per_user_per_day", "limits")
"""What an imported agent keeps of the widget's: where it answers from and what it may spend,
of which an export says nothing."""
KEPT_GUARDRAILS = ("max_input_length", "refusal_message")
KEPT_TOOLS = ("http", "client")
"""The widget's tools an import keeps: an export describes none of their kind (its function
tools are Python Kithost cannot run), so they stay the widget's; its file search, web search
and MCP servers replace the widget's."""
BASE_URL = "config.agent.base_url"
TOOLS = "config.agent.tools"


def etag(widget: Widget) -> str:
    return f'"{widget.revision}"'


def check_if_match(widget: Widget, if_match: str | None) -> None:
    """Refuse a change unless ``If-Match`` names the widget's current ETag."""
    if if_match is None or if_match.strip() == "*":
        raise PreconditionRequired(
            "Send If-Match with the widget's ETag (from GET or your last change)."
        )
    if etag(widget) not in {tag.strip() for tag in if_match.split(",")}:
        raise PreconditionFailed(
            "The widget changed since you read it; get it again.",
            headers={"ETag": etag(widget)},
        )


async def create_widget(
    session: AsyncSession,
    actor: Actor,
    tenant: Tenant,
    *,
    name: str,
    config: Any = None,
    origins: Iterable[str] = (),
    allow_insecure_origins: bool = False,
    outbound: OutboundPolicy | None = None,
) -> Widget:
    """Create a widget with a fresh public key (``pk_`` + 192 random bits); ``config`` is
    the draft (the defaults when None), checked by :func:`_draft` (no new widget is hosted)."""
    draft = await _draft(
        session, tenant.id, {} if config is None else config, widget=None, outbound=outbound
    )
    normalized = sorted(
        {
            _normalize(o, f"origins.{i}", allow_insecure=allow_insecure_origins)
            for i, o in enumerate(origins)
        }
    )
    widget = Widget(
        tenant_id=tenant.id,
        name=name,
        public_key=random_token("pk_"),
        draft=draft,
        allow_insecure_origins=allow_insecure_origins,
    )
    session.add(widget)
    await session.flush()
    session.add_all(
        AllowedOrigin(tenant_id=tenant.id, widget_id=widget.id, origin=o) for o in normalized
    )
    _record(
        session,
        actor,
        widget,
        "widget.created",
        audit.changes({}, {**_audited(widget), "origins": normalized}),
    )
    return widget


async def get_widget(
    session: AsyncSession, tenant: Tenant, widget_id: uuid.UUID, *, hold: bool = False
) -> Widget:
    """``hold``: its row held against changes until the unit of work ends (see
    ``repository.get_widget``)."""
    widget = await repository.get_widget(session, tenant.id, widget_id, hold=hold)
    if widget is None:
        raise NotFound(f"No widget {widget_id}.", code="widget_not_found")
    return widget


async def list_widgets(
    session: AsyncSession, tenant: Tenant, *, after: uuid.UUID | None, limit: int, q: str | None
) -> Sequence[Widget]:
    """The tenant's widgets in creation order, from the one after the widget ``after``;
    only those whose name holds ``q`` unless it is None."""
    cursor = None
    if after is not None:
        cursor = await repository.get_widget(session, tenant.id, after)
        if cursor is None:
            raise invalid_field("after", "no widget with this id", "cursor")
    return await repository.list_widgets(session, tenant.id, after=cursor, limit=limit, q=q)


async def edit_widget(
    session: AsyncSession,
    access: TenantAccess,
    widget_id: uuid.UUID,
    if_match: str | None,
    *,
    name: str | None = None,
    config_patch: dict[str, Any] | None = None,
    allow_insecure_origins: bool | None = None,
    outbound: OutboundPolicy | None = None,
) -> Widget:
    """Change what is given; the draft by a JSON merge patch (RFC 7396)."""
    widget = await _writable(session, access.tenant, widget_id, if_match)
    draft = None
    if config_patch is not None:
        merged = _merge_patch(widget.draft, config_patch)
        draft = await _draft(
            session,
            widget.tenant_id,
            merged,
            widget=widget,
            outbound=outbound,
        )
    if allow_insecure_origins is False and widget.allow_insecure_origins:
        await _refuse_insecure_origins(session, widget)
    await _change(
        session,
        access.actor,
        widget,
        "widget.updated",
        name=name,
        draft=draft,
        allow_insecure_origins=allow_insecure_origins,
    )
    return widget


async def convert_hosted(
    session: AsyncSession,
    access: TenantAccess,
    widget_id: uuid.UUID,
    if_match: str | None,
    *,
    settings: Settings,
) -> tuple[Widget, Conversion]:
    """Turn a hosted widget's draft into a self-hosted one (see ``widgets.convert``);
    visitors see nothing of it until it is published."""
    widget = await _writable(session, access.tenant, widget_id, if_match)
    config = parse_config(widget.draft)
    if config.mode is not WidgetMode.hosted:
        raise Conflict("Only a hosted widget converts.", code="not_hosted")
    conversion = convert(config, settings.chat_attachment_max_bytes)
    draft = await _draft(
        session,
        widget.tenant_id,
        conversion.config.model_dump(mode="json"),
        widget=widget,
        outbound=settings.outbound_policy,
    )
    await _change(session, access.actor, widget, "widget.converted", draft=draft)
    return widget, conversion


@dataclass(frozen=True)
class SecretFate:
    """What became of a secret of the widget's tools as they changed: the server (origin)
    it was set for and whether it was removed."""

    origin: str
    removed: bool


ToolSecrets = Callable[
    [AsyncSession, Actor, Widget, set[tuple[str, str]], bool],
    Awaitable[Mapping[str, SecretFate]],
]
"""``(session, actor, widget, used, dry_run)``: removes (unless ``dry_run``, audited) the
secrets of the widget's tools whose ``(tool id, server origin)`` is not in ``used``, and
answers each secret's fate by tool id."""
_TOOL_SECRETS: list[ToolSecrets] = []


def owns_tool_secrets(forget: ToolSecrets) -> None:
    """Have ``forget`` run as an import replaces the widget's tools, and as a version is
    published, so that a secret goes with the last tool that used it: a secret is kept while
    the draft or the published version has its tool at the server it was set for
    (``mcp_tools.service`` registers as it is imported)."""
    _TOOL_SECRETS.append(forget)


async def _forget_secrets(
    session: AsyncSession,
    actor: Actor,
    widget: Widget,
    configs: Iterable[dict[str, Any] | None],
    *,
    dry_run: bool = False,
) -> dict[str, SecretFate]:
    used = {
        (tool["id"], origin)
        for config in configs
        for tool in _stored_tools(config)
        if isinstance(tool.get("id"), str) and (origin := _server(tool)) is not None
    }
    fates: dict[str, SecretFate] = {}
    for forget in _TOOL_SECRETS:
        fates.update(await forget(session, actor, widget, used, dry_run))
    return fates


def _server(tool: dict[str, Any]) -> str | None:
    """The server a stored tool's ``url`` reaches (None: it has none it could reach)."""
    try:
        return origin_of(tool["url"]) if isinstance(tool.get("url"), str) else None
    except ValueError:  # saved under older rules
        return None


def _stored_tools(config: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The tools of a configuration as stored (one saved under older rules included)."""
    agent = (config or {}).get("agent")
    tools = agent.get("tools") if isinstance(agent, dict) else None
    return [t for t in tools if isinstance(t, dict)] if isinstance(tools, list) else []


Change = Literal["added", "replaced", "unchanged", "removed", "kept"]
SecretKept = Literal["kept", "removed", "kept_for_published"] | None


@dataclass(frozen=True)
class ToolChange:
    """What an import did to one of the widget's tools."""

    id: str
    type: str
    change: Change
    """``kept``: a tool of a kind no export describes (:data:`KEPT_TOOLS`)."""
    secret: SecretKept
    """Its secret: ``removed`` with its server, ``kept_for_published`` while the published
    version uses it (removed when a version without it is published); None: it has none."""


@dataclass(frozen=True)
class AgentImport:
    widget: Widget
    draft: dict[str, Any]
    imported: ImportedAgent
    tools: list[ToolChange]


async def import_agent(
    session: AsyncSession,
    access: TenantAccess,
    widget_id: uuid.UUID,
    if_match: str | None,
    source: str,
    *,
    dry_run: bool,
    settings: Settings,
    box: SecretBox,
) -> AgentImport:
    """The widget's draft with the agent of an Agent Builder export (read, never run: see
    ``widgets.agent_import``); each vector store its file searches name searched through the
    tenant's knowledge base for it, adopted if it is the tenant's (``widgets.adoption``: the
    others are listed as not carried). The export is the truth for what it describes (the
    agent, its handoffs, file search, web search and MCP servers: the secrets of servers no
    longer used go with them, see :func:`owns_tool_secrets`); what it says nothing of (the
    agent's endpoint, quota and limits: :data:`KEPT_AGENT`, :data:`KEPT_GUARDRAILS`; its
    ``http`` and ``client`` tools: :data:`KEPT_TOOLS`) stays the widget's. What became of
    each tool is answered. A ``dry_run`` changes nothing (and needs no ``If-Match``). A
    hosted widget's draft is refused: its workflow, not the agent, answers until it is
    converted."""
    widget = await (
        get_widget(session, access.tenant, widget_id)
        if dry_run
        else _writable(session, access.tenant, widget_id, if_match)
    )
    if widget.draft.get("mode") == WidgetMode.hosted:  # its workflow would answer, not the agent
        raise Conflict(
            "A hosted widget's agent never answers: convert the widget first "
            "(POST …/widgets/{id}/convert), then import.",
            code="widget_hosted",
        )
    own: dict[str, Any] = widget.draft.get("agent") or {}
    before = _stored_tools(widget.draft)
    kept = [tool for tool in before if tool.get("type") in KEPT_TOOLS]
    try:  # off the event loop: a large export takes a few hundred ms of parsing
        imported = await asyncio.to_thread(
            read_export,
            source,
            settings.outbound_policy.https_refusal,
            {str(tool.get("id")) for tool in kept},
        )
    except ImportRefused as exc:
        where = "" if exc.line is None else f" (line {exc.line})"
        raise InvalidInput(
            exc.message + where,
            code=exc.code,
            errors=[FieldError(field="code", message=exc.message + where, type=exc.code)],
        ) from None
    savepoint = await session.begin_nested()
    bases = await adopt_vector_stores(session, settings, box, access, widget, imported)
    tools: list[dict[str, Any]] = []
    if bases:
        searched = [str(base) for base in bases.values()]
        tools.append({"type": "file_search", "id": "knowledge", "knowledge_bases": searched})
    if imported.web_search is not None:
        tools.append({"type": "web_search", "id": "web", **imported.web_search})
    tools.extend(imported.mcp)
    team = imported.team({tool["id"] for tool in tools})
    team.update(_main_tools(own, kept, team, [tool["id"] for tool in tools]))
    guardrails = {k: v for k, v in own.get("guardrails", {}).items() if k in KEPT_GUARDRAILS}
    agent = {
        **WidgetConfig().agent.model_dump(mode="json"),
        **{key: own[key] for key in KEPT_AGENT if key in own},
        **imported.agent,
        "guardrails": {**guardrails, **imported.agent.get("guardrails", {})},
        "tools": tools + kept,
        **team,
    }
    draft = await _draft(
        session,
        widget.tenant_id,
        {**widget.draft, "agent": agent},
        widget=widget,
        outbound=settings.outbound_policy,
    )
    if dry_run:
        await savepoint.rollback()
    else:
        await savepoint.commit()
    if not dry_run:
        await _change(
            session,
            access.actor,
            widget,
            "widget.agent_imported",
            draft=draft,
            data={"not_carried": len(imported.skipped)},
        )
    published = None
    if widget.published_version is not None:
        version = await repository.get_version(
            session, widget.tenant_id, widget.id, widget.published_version
        )
        published = None if version is None else version.config
    # The widget's row first (the change above), then its secrets, as publishing takes them.
    fates = await _forget_secrets(
        session, access.actor, widget, [draft, published], dry_run=dry_run
    )
    return AgentImport(widget, draft, imported, _tool_changes(before, _stored_tools(draft), fates))


def _main_tools(
    own: dict[str, Any], kept: list[dict[str, Any]], team: dict[str, Any], imported: list[str]
) -> dict[str, Any]:
    """The imported agent's ``main_tools`` with the kept tools the widget's main agent used
    (a kept tool only its former handoffs used is left to no agent): nothing when it uses
    every tool."""
    used = own.get("main_tools")
    ids = [str(tool.get("id")) for tool in kept]
    mine = [tool for tool in ids if used is None or tool in used]
    if "main_tools" not in team and mine == ids:
        return {}
    return {"main_tools": team.get("main_tools", imported) + mine}


def _tool_changes(
    before: list[dict[str, Any]], after: list[dict[str, Any]], fates: Mapping[str, SecretFate]
) -> list[ToolChange]:
    old = {tool.get("id"): tool for tool in before}
    new = {tool["id"]: tool for tool in after}
    changes: list[ToolChange] = []
    for tool in [*after, *(t for t in before if t.get("id") not in new)]:
        tool_id, kind = str(tool.get("id")), str(tool.get("type"))
        change: Change
        if tool_id not in new:
            change = "removed"
        elif kind in KEPT_TOOLS:
            change = "kept"
        elif tool_id not in old:
            change = "added"
        else:
            change = "unchanged" if old[tool_id] == tool else "replaced"
        kept = _secret_kept(fates.get(tool_id), new.get(tool_id))
        changes.append(ToolChange(tool_id, kind, change, kept))
    return changes


def _secret_kept(fate: SecretFate | None, tool: dict[str, Any] | None) -> SecretKept:
    if fate is None:
        return None
    if fate.removed:
        return "removed"
    return "kept" if tool is not None and _server(tool) == fate.origin else "kept_for_published"


async def replace_config(
    session: AsyncSession,
    access: TenantAccess,
    widget_id: uuid.UUID,
    if_match: str | None,
    config: Any,
    *,
    outbound: OutboundPolicy | None = None,
) -> Widget:
    """Replace the draft as a whole."""
    widget = await _writable(session, access.tenant, widget_id, if_match)
    draft = await _draft(
        session,
        widget.tenant_id,
        config,
        widget=widget,
        outbound=outbound,
    )
    await _change(session, access.actor, widget, "widget.updated", draft=draft)
    return widget


WidgetData = Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[object]]
"""Deletes what a package above this one keeps of a widget beyond the rows the database
deletes with it (the chat's attachments' bytes): ``(session, tenant_id, widget_id)``, in
the caller's unit of work."""
_WIDGET_DATA: list[WidgetData] = []


def owns_widget_data(delete: WidgetData) -> None:
    """Have ``delete`` run as each widget is deleted, before its rows go (``chat.service``
    registers as it is imported)."""
    _WIDGET_DATA.append(delete)


async def delete_widget(session: AsyncSession, access: TenantAccess, widget_id: uuid.UUID) -> None:
    """Delete the widget with its versions, origins and everything visitors said or sent
    to it: visitors see it no more."""
    widget = await get_widget(session, access.tenant, widget_id)
    _record(session, access.actor, widget, "widget.deleted", audit.changes(_audited(widget), {}))
    for delete in _WIDGET_DATA:
        await delete(session, access.tenant.id, widget.id)
    await session.delete(widget)
    await _flush(session)


async def publish(
    session: AsyncSession,
    access: TenantAccess,
    widget_id: uuid.UUID,
    if_match: str | None,
    note: str = "",
    *,
    outbound: OutboundPolicy | None = None,
) -> Widget:
    """Freeze the draft, checked again, as the next version and show it to visitors."""
    widget = await _writable(session, access.tenant, widget_id, if_match)
    principal = access.principal
    user = principal.user if isinstance(principal, UserPrincipal) else None
    return await publish_draft(
        session, access.actor, widget, published_by=user, note=note, outbound=outbound
    )


async def publish_draft(
    session: AsyncSession,
    actor: Actor,
    widget: Widget,
    *,
    published_by: User | None,
    note: str = "",
    outbound: OutboundPolicy | None = None,
) -> Widget:
    """Publish ``widget``'s draft as its next version (callers have checked access), checked
    as saving it is (:func:`_draft`): since it was saved, a rule may have grown stricter, a
    knowledge base it searches been deleted, an address it calls been refused by
    ``outbound``, the widget's model key been set for another endpoint."""
    config = await _draft(session, widget.tenant_id, widget.draft, widget=widget, outbound=outbound)
    number = await repository.last_version_number(session, widget.tenant_id, widget.id) + 1
    changes = audit.changes(
        {"published_version": widget.published_version}, {"published_version": number}
    )
    _record(
        session, actor, widget, "widget.published", {**changes, "note": note} if note else changes
    )
    widget.published_version = number
    # The new revision first: of two requests publishing the same number, one fails here.
    await _flush(session)
    session.add(
        WidgetVersion(
            tenant_id=widget.tenant_id,
            widget_id=widget.id,
            number=number,
            config=config,
            published_by_id=published_by.id if published_by is not None else None,
            note=note,
        )
    )
    data = {"widget_id": str(widget.id), "name": widget.name, "version": number}
    await webhooks.emit(session, widget.tenant_id, "widget.published", data)
    await _forget_secrets(session, actor, widget, [config])  # draft and version alike
    return widget


async def list_versions(
    session: AsyncSession,
    tenant: Tenant,
    widget_id: uuid.UUID,
    *,
    before: int | None,
    limit: int,
) -> Sequence[WidgetVersion]:
    widget = await get_widget(session, tenant, widget_id)
    return await repository.list_versions(session, tenant.id, widget.id, before=before, limit=limit)


async def get_version(
    session: AsyncSession, tenant: Tenant, widget_id: uuid.UUID, number: int
) -> WidgetVersion:
    return await _version(session, await get_widget(session, tenant, widget_id), number)


async def restore_version(
    session: AsyncSession,
    access: TenantAccess,
    widget_id: uuid.UUID,
    number: int,
    if_match: str | None,
    *,
    outbound: OutboundPolicy | None = None,
) -> Widget:
    """Copy a version's configuration into the draft (publishing it is another step),
    checked as any draft is (:func:`_draft`): since it was published, the widget's model key
    may have been set for another endpoint (:func:`check_agent`), a knowledge base it
    searches deleted, a tool's address refused by ``outbound``, a self-hosted version
    published (a hosted one is not restored then)."""
    widget = await _writable(session, access.tenant, widget_id, if_match)
    version = await _version(session, widget, number)
    draft = await _draft(
        session, widget.tenant_id, version.config, widget=widget, outbound=outbound
    )
    await _change(
        session,
        access.actor,
        widget,
        "widget.version_restored",
        draft=draft,
        data={"version": number},
    )
    return widget


async def list_origins(
    session: AsyncSession, tenant: Tenant, widget_id: uuid.UUID
) -> Sequence[AllowedOrigin]:
    widget = await get_widget(session, tenant, widget_id)
    return await repository.list_origins(session, tenant.id, widget.id)


async def add_origin(
    session: AsyncSession,
    access: TenantAccess,
    widget_id: uuid.UUID,
    *,
    origin: str,
    domain_key: str | None,
) -> AllowedOrigin:
    widget = await get_widget(session, access.tenant, widget_id)
    allowed = await allow_origin(session, access.actor, widget, origin, domain_key=domain_key)
    if allowed is None:
        raise Conflict(f"{origin} is allowed already.", code="origin_exists")
    return allowed


async def allow_origin(
    session: AsyncSession, actor: Actor, widget: Widget, origin: str, *, domain_key: str | None
) -> AllowedOrigin | None:
    """Allow ``origin`` on ``widget`` (audited); None when it is allowed already."""
    normalized = _normalize(origin, "origin", allow_insecure=widget.allow_insecure_origins)
    if await repository.origin_exists(session, widget.tenant_id, widget.id, normalized):
        return None
    # The new revision first: of two requests adding the same origin, one fails here.
    await _touch(session, widget)
    allowed = AllowedOrigin(
        tenant_id=widget.tenant_id, widget_id=widget.id, origin=normalized, domain_key=domain_key
    )
    session.add(allowed)
    await session.flush()
    _record_origin(
        session, actor, widget, allowed, "widget.origin_added", {}, _origin_state(allowed)
    )
    return allowed


async def update_origin(
    session: AsyncSession,
    access: TenantAccess,
    widget_id: uuid.UUID,
    origin_id: uuid.UUID,
    *,
    domain_key: str | None,
) -> AllowedOrigin:
    widget, allowed = await _origin(session, access.tenant, widget_id, origin_id)
    if domain_key != allowed.domain_key:
        before = _origin_state(allowed)
        allowed.domain_key = domain_key
        after = _origin_state(allowed)
        _record_origin(
            session, access.actor, widget, allowed, "widget.origin_updated", before, after
        )
        await _touch(session, widget)
    return allowed


async def remove_origin(
    session: AsyncSession, access: TenantAccess, widget_id: uuid.UUID, origin_id: uuid.UUID
) -> None:
    widget, allowed = await _origin(session, access.tenant, widget_id, origin_id)
    state = _origin_state(allowed)
    _record_origin(session, access.actor, widget, allowed, "widget.origin_removed", state, {})
    await session.delete(allowed)
    await _touch(session, widget)


async def _writable(
    session: AsyncSession, tenant: Tenant, widget_id: uuid.UUID, if_match: str | None
) -> Widget:
    widget = await get_widget(session, tenant, widget_id)
    check_if_match(widget, if_match)
    return widget


async def _version(session: AsyncSession, widget: Widget, number: int) -> WidgetVersion:
    version = await repository.get_version(session, widget.tenant_id, widget.id, number)
    if version is None:
        raise NotFound(f"Widget {widget.id} has no version {number}.", code="version_not_found")
    return version


async def _origin(
    session: AsyncSession, tenant: Tenant, widget_id: uuid.UUID, origin_id: uuid.UUID
) -> tuple[Widget, AllowedOrigin]:
    widget = await get_widget(session, tenant, widget_id)
    allowed = await repository.get_origin(session, tenant.id, widget.id, origin_id)
    if allowed is None:
        raise NotFound(f"Widget {widget_id} has no origin {origin_id}.", code="origin_not_found")
    return widget, allowed


async def _draft(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    config: Any,
    *,
    widget: Widget | None,
    outbound: OutboundPolicy | None,
) -> dict[str, Any]:
    """A configuration as stored: checked, with every default filled in. The one check of
    a draft, whichever way it comes (created, saved, converted, imported, restored), run
    again when it is published. ``widget``: the one it is for (None: a new widget), see
    :func:`check_agent` and :func:`_check_mode`."""
    parsed = parse_config(config if widget is None else restored(config, widget.draft))
    await _check_mode(session, parsed, widget)
    check_agent(parsed, widget=widget, outbound=outbound)
    check_shown(parsed)
    check_tools(parsed, outbound)
    check_handoffs(parsed)
    await _check_knowledge_bases(session, tenant_id, parsed)
    return parsed.model_dump(mode="json")


async def _check_mode(session: AsyncSession, config: WidgetConfig, widget: Widget | None) -> None:
    """A hosted draft only in a hosted widget: OpenAI shut Agent Builder down on 2026-11-30,
    so no widget becomes hosted, whether made, saved, restored or published so. A widget is
    hosted when its published version is or, never published, its draft is (as stored, which
    for a publish is the draft itself: a hosted widget made before the shutdown)."""
    if config.mode is not WidgetMode.hosted:
        return
    stored = None if widget is None else widget.draft
    if widget is not None and widget.published_version is not None:
        version = await repository.get_version(
            session, widget.tenant_id, widget.id, widget.published_version
        )
        stored = None if version is None else version.config
    if stored is None or stored.get("mode") != WidgetMode.hosted:
        raise InvalidInput(
            AGENT_BUILDER_RETIRED,
            code="agent_builder_retired",
            errors=[FieldError(field="config.mode", message=AGENT_BUILDER_RETIRED, type="retired")],
        )


def check_shown(config: WidgetConfig) -> None:
    """What visitors read of the agents and tools (the agents' names: "Transferred to …";
    the tools' labels while they run; the launcher's label) holds no character that reorders
    or hides text (``kit.visible``): 422 ``invisible_character`` on the field, as any name.
    Checked as a draft is saved (not in the schema: a version published before stays
    served)."""
    shown = [
        ("config.launcher.label", config.launcher.label),
        ("config.agent.name", config.agent.name),
    ]
    shown += [(f"{TOOLS}.{i}.label", tool.label) for i, tool in enumerate(config.agent.tools)]
    shown += [
        (f"config.agent.handoffs.{i}.name", handoff.name)
        for i, handoff in enumerate(config.agent.handoffs)
    ]
    for field, text in shown:
        if has_invisible(text):
            raise invalid_field(field, INVISIBLE_MESSAGE, INVISIBLE_TYPE)


def check_tools(config: WidgetConfig, outbound: OutboundPolicy | None = None) -> None:
    """Tool ids are unique; OpenAI's hosted tools (``file_search``, ``web_search``) need the
    Responses API, each once per agent (one ``file_search`` searches several bases); ``http``
    and ``client`` tools (and the tools an ``mcp`` tool allows) have names of their own and
    an ``http`` or ``mcp`` tool, when ``outbound`` (the deployment's policy) is given, an
    HTTPS URL Kithost may connect to (``kit.outbound``)."""
    seen: dict[str, str] = {}
    names: set[str] = set()
    for index, tool in enumerate(config.agent.tools):
        field = f"{TOOLS}.{index}"
        if tool.id in seen:
            raise invalid_field(f"{field}.id", f"another tool has the id {tool.id!r}")
        if isinstance(tool, HttpTool | ClientTool | McpTool):
            seen[tool.id] = tool.type
            named = (
                [(f"{field}.allowed_tools.{i}", n) for i, n in enumerate(tool.allowed_tools)]
                if isinstance(tool, McpTool)
                else [(f"{field}.name", tool.name)]
            )
            for at, name in named:
                if name in names:
                    raise invalid_field(at, f"another tool is named {name!r}")
                names.add(name)
            if isinstance(tool, ClientTool):
                continue
            if HIDDEN in str(tool.url):
                raise invalid_field(
                    f"{field}.url",
                    f"{HIDDEN} stands for a part of the URL hidden in reads: give the URL "
                    "whole (or, unchanged, as read for this tool)",
                    "url_hidden",
                )
            if tool.url.username is not None or tool.url.password is not None:
                raise invalid_field(
                    f"{field}.url",
                    "a tool's URL carries no user or password (they would be shown wherever "
                    "the config is): set the tool's secret",
                    "url_userinfo",
                )
            refused = None if outbound is None else outbound.https_refusal(str(tool.url))
            if refused is not None:
                raise invalid_field(
                    f"{field}.url",
                    f"Kithost may not connect to this address: {refused}",
                    "outbound_refused",
                )
            continue
        if tool.type in seen.values():
            raise invalid_field(f"{field}.type", f"an agent has one {tool.type} tool")
        seen[tool.id] = tool.type
        if config.agent.model_api is ModelApi.chat_completions:
            raise invalid_field(
                f"{field}.type",
                f"{tool.type} needs the Responses API (agent.model_api 'responses')",
                "tool_needs_responses",
            )


async def _check_knowledge_bases(
    session: AsyncSession, tenant_id: uuid.UUID, config: WidgetConfig
) -> None:
    searches = [(i, t) for i, t in enumerate(config.agent.tools) if isinstance(t, FileSearch)]
    wanted = {base for _, tool in searches for base in tool.knowledge_bases}
    if not wanted:
        return
    found = await repository.existing_knowledge_bases(session, tenant_id, wanted)
    for index, tool in searches:
        missing = [str(b) for b in tool.knowledge_bases if b not in found]
        if missing:
            raise invalid_field(
                f"{TOOLS}.{index}.knowledge_bases",
                f"no such knowledge base: {', '.join(missing)}",
                "knowledge_base_not_found",
            )


def check_agent(
    config: WidgetConfig, *, widget: Widget | None, outbound: OutboundPolicy | None = None
) -> None:
    """A self-hosted agent with its own ``base_url`` needs the model key of ``widget`` (None:
    a new widget, which has none) set for that very URL: no other key ever goes to a URL a
    tenant chose, and the key goes only to the endpoint it was set for
    (``secrets.service.model_endpoint``), so an editor cannot send a key an owner set to
    their own server. When ``outbound`` (the deployment's policy) is given, the address must
    be one Kithost may connect to; a name is checked again on every connection
    (``kit.outbound``)."""
    base_url = config.agent.base_url
    if config.mode is not WidgetMode.self_hosted or base_url is None:
        return
    if config.agent.guardrails.moderation:
        raise invalid_field(
            "config.agent.guardrails.moderation",
            "OpenAI's moderation needs an agent on OpenAI (no base_url)",
            "moderation_needs_openai",
        )
    refused = None if outbound is None else outbound.url_refusal(str(base_url))
    if refused is not None:
        raise invalid_field(
            BASE_URL, f"Kithost may not connect to this address: {refused}", "outbound_refused"
        )
    if widget is None or widget.model_key is None:
        title = "Set the widget's model key before giving its agent a base_url."
        message = (
            "an agent with its own base_url needs the widget's model key for it "
            "(PUT …/model-key first); no other key is sent there"
        )
    elif widget.model_key_base_url != str(base_url):
        title = "The widget's model key was set for another endpoint: set it again for this one."
        message = (
            "the widget's model key was set for another endpoint; set it again for this "
            "base_url (PUT …/model-key) to send it here; no other key is sent there"
        )
    else:
        return
    raise InvalidInput(
        title,
        code="model_key_required",
        errors=[FieldError(field=BASE_URL, message=message, type="model_key_required")],
    )


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge_patch(merged.get(key), value)
    return merged


def _normalize(value: str, field: str, *, allow_insecure: bool) -> str:
    try:
        origin = normalize_pattern(value, allow_insecure=allow_insecure)
    except InvalidOrigin as exc:
        raise invalid_field(field, str(exc), "origin") from exc
    if len(origin) > ORIGIN_MAX_LENGTH:
        raise invalid_field(field, f"at most {ORIGIN_MAX_LENGTH} characters normalised", "origin")
    return origin


def _is_secure(origin: str) -> bool:
    try:
        normalize_pattern(origin)
    except InvalidOrigin:
        return False
    return True


async def _refuse_insecure_origins(session: AsyncSession, widget: Widget) -> None:
    origins = await repository.list_origins(session, widget.tenant_id, widget.id)
    insecure = [o.origin for o in origins if not _is_secure(o.origin)]
    if insecure:
        raise Conflict(
            f"Remove the plain http:// origins first: {', '.join(insecure)}.",
            code="insecure_origins_exist",
        )


async def _change(
    session: AsyncSession,
    actor: Actor,
    widget: Widget,
    action: str,
    *,
    name: str | None = None,
    draft: dict[str, Any] | None = None,
    allow_insecure_origins: bool | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Set what is given; a change that changes nothing keeps the revision, unaudited. The
    audit entry shows tools' URLs as reads do (``widgets.redaction``): a change only to
    their hidden parts says so (``hidden_changed``)."""
    before, stored = _audited(widget), widget.draft
    if name is not None:
        widget.name = name
    if draft is not None:
        widget.draft = draft
    if allow_insecure_origins is not None:
        widget.allow_insecure_origins = allow_insecure_origins
    after = _audited(widget)
    if after != before or widget.draft != stored:
        hidden = {"hidden_changed": True} if after == before else {}
        changes = {**audit.changes(before, after), **hidden, **(data or {})}
        _record(session, actor, widget, action, changes)
        await _flush(session)


def _audited(widget: Widget) -> dict[str, Any]:
    """The widget's settings as the audit log shows them: each configuration group apart,
    its tools' URLs as reads show them (``widgets.redaction``)."""
    return {
        "name": widget.name,
        "allow_insecure_origins": widget.allow_insecure_origins,
        **{f"config.{group}": value for group, value in redacted(widget.draft).items()},
    }


def _origin_state(allowed: AllowedOrigin) -> dict[str, Any]:
    return {"origin": allowed.origin, "domain_key": allowed.domain_key}


def _record_origin(
    session: AsyncSession,
    actor: Actor,
    widget: Widget,
    allowed: AllowedOrigin,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    data = {"origin_id": str(allowed.id), **audit.changes(before, after)}
    _record(session, actor, widget, action, data)


def _record(
    session: AsyncSession, actor: Actor, widget: Widget, action: str, data: dict[str, Any]
) -> None:
    audit.record(
        session,
        actor,
        action,
        tenant_id=widget.tenant_id,
        target_type="widget",
        target_id=widget.id,
        data=data,
    )


async def _touch(session: AsyncSession, widget: Widget) -> None:
    """Make a change of the widget's origins a new revision of the widget."""
    widget.updated_at = utcnow()
    await _flush(session)


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except StaleDataError as exc:
        raise PreconditionFailed("The widget changed meanwhile; get it again.") from exc
