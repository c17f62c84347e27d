"""Every route under ``/api/v1/tenants/{tenant}`` against every kind of caller.

The routes come from the app's route table, so a new route fails this test until it is
classified in :data:`ROUTES` with the scopes it needs. Each route is then called with real
path parameters, a valid body and, for a change that needs it, ``If-Match``, by: nobody
(401); the tenant's owner, admin, editor and viewer (allowed or 403 by the role table); a
platform admin (allowed); an owner of another tenant and an API client of another tenant
holding every scope (404); for each scope the route needs, an API client of the tenant
holding every scope but that one (403); and one holding only the route's scopes (allowed).
"Allowed" means the handler ran: 2xx, or a domain 4xx that is not 401, 403, 404 or 422.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.auth.roles import ALL_SCOPES, ROLE_SCOPES
from kithost.auth.scopes import Scope
from kithost.clients.service import create_client
from kithost.invitations.service import create_invitation
from kithost.models import (
    AllowedOrigin,
    ChatThread,
    ConversationExport,
    ErrorGroup,
    KnowledgeBase,
    KnowledgeDocument,
    Role,
    Tenant,
    WebhookDelivery,
    WebhookEndpoint,
    Widget,
    WidgetVersion,
)
from kithost.models.base import utcnow
from kithost.widgets.service import create_widget
from tests.factories import client_token, login, make_member, make_tenant, make_user

PREFIX = "/api/v1/tenants/{tenant}"


@dataclass(frozen=True)
class Rule:
    scope: Scope | frozenset[Scope] | None
    """The scope the route needs, or the scopes it needs all of; None: any access to the
    tenant."""
    body: dict[str, Any] | None = None
    if_match: str | None = None
    """The ``If-Match`` of a change that needs it: a fresh target widget is at revision 1."""
    grants: Role | None = None
    """The role the call gives or takes: a client needs that role's scopes too."""
    files: dict[str, tuple[str, bytes, str]] | None = None
    """A multipart body (instead of ``body``)."""

    @property
    def needs(self) -> frozenset[Scope]:
        if self.scope is None:
            return frozenset()
        return self.scope if isinstance(self.scope, frozenset) else frozenset({self.scope})


WIDGET = f"{PREFIX}/widgets/{{id}}"
ANALYTICS = f"{PREFIX}/analytics"
KNOWLEDGE = f"{PREFIX}/knowledge-bases"
HOOKS = f"{PREFIX}/webhooks"
END_USER_DATA = frozenset({Scope.members_write, Scope.conversations_write})
"""Erasure and retention delete chat data too."""
ROUTES: dict[tuple[str, str], Rule] = {
    ("GET", f"{PREFIX}/openai-key"): Rule(Scope.widgets_read),
    ("PUT", f"{PREFIX}/openai-key"): Rule(
        Scope.widgets_write, {"api_key": "sk-test-0123456789abcdef"}
    ),
    ("DELETE", f"{PREFIX}/openai-key"): Rule(Scope.widgets_write),
    ("POST", f"{WIDGET}/identity-secret"): Rule(Scope.sessions_mint),
    ("DELETE", f"{WIDGET}/identity-secret"): Rule(Scope.sessions_mint),
    ("POST", f"{WIDGET}/tool-secret"): Rule(Scope.widgets_write),
    ("GET", f"{WIDGET}/mcp-secrets"): Rule(Scope.widgets_read),
    ("PUT", f"{WIDGET}/mcp-secrets/{{tool_id}}"): Rule(Scope.widgets_write, {"value": "Bearer x"}),
    ("DELETE", f"{WIDGET}/mcp-secrets/{{tool_id}}"): Rule(Scope.widgets_write),
    ("POST", f"{WIDGET}/tools/{{tool_id}}/discover"): Rule(Scope.widgets_write),
    ("PUT", f"{WIDGET}/model-key"): Rule(Scope.widgets_write, {"api_key": "model-key-0123"}),
    ("DELETE", f"{WIDGET}/model-key"): Rule(Scope.widgets_write),
    ("POST", f"{WIDGET}/sessions"): Rule(Scope.sessions_mint, {"user": "42"}),
    ("GET", f"{PREFIX}/audit"): Rule(Scope.members_read),
    ("GET", PREFIX): Rule(None),
    ("PATCH", PREFIX): Rule(Scope.members_write, {"name": "Renamed"}),
    ("GET", f"{PREFIX}/members"): Rule(Scope.members_read),
    ("PATCH", f"{PREFIX}/members/{{user_id}}"): Rule(
        Scope.members_write, {"role": "viewer"}, grants=Role.viewer
    ),
    ("DELETE", f"{PREFIX}/members/{{user_id}}"): Rule(Scope.members_write, grants=Role.viewer),
    ("POST", f"{PREFIX}/invitations"): Rule(
        Scope.members_write,
        {"email": "invitee@example.test", "role": "viewer"},
        grants=Role.viewer,
    ),
    ("GET", f"{PREFIX}/invitations"): Rule(Scope.members_read),
    ("DELETE", f"{PREFIX}/invitations/{{id}}"): Rule(Scope.members_write, grants=Role.viewer),
    ("POST", f"{PREFIX}/clients"): Rule(
        Scope.clients_write, {"name": "made", "scopes": ["clients:write"]}
    ),
    ("GET", f"{PREFIX}/clients"): Rule(Scope.clients_write),
    ("DELETE", f"{PREFIX}/clients/{{id}}"): Rule(Scope.clients_write),
    ("POST", f"{PREFIX}/widgets"): Rule(Scope.widgets_write, {"name": "made"}),
    ("GET", f"{PREFIX}/widgets"): Rule(Scope.widgets_read),
    ("GET", WIDGET): Rule(Scope.widgets_read),
    ("PATCH", WIDGET): Rule(Scope.widgets_write, {"name": "Renamed"}, '"1"'),
    ("DELETE", WIDGET): Rule(Scope.widgets_write),
    ("PUT", f"{WIDGET}/config"): Rule(Scope.widgets_write, {"placement": "direct"}, '"1"'),
    ("POST", f"{WIDGET}/publish"): Rule(Scope.widgets_write, None, '"1"'),
    ("POST", f"{WIDGET}/preview"): Rule(Scope.widgets_write, None),
    ("POST", f"{WIDGET}/convert"): Rule(Scope.widgets_write, None, '"1"'),
    ("POST", f"{WIDGET}/agent-import"): Rule(
        Scope.widgets_write, {"code": 'a = Agent(name="A", instructions="Hi")'}, '"1"'
    ),
    ("GET", f"{WIDGET}/versions"): Rule(Scope.widgets_read),
    ("GET", f"{WIDGET}/versions/{{number}}"): Rule(Scope.widgets_read),
    ("POST", f"{WIDGET}/versions/{{number}}/restore"): Rule(Scope.widgets_write, None, '"1"'),
    ("GET", f"{WIDGET}/origins"): Rule(Scope.widgets_read),
    ("POST", f"{WIDGET}/origins"): Rule(
        Scope.widgets_write, {"origin": "https://shop.example.com"}
    ),
    ("PATCH", f"{WIDGET}/origins/{{origin_id}}"): Rule(
        Scope.widgets_write, {"domain_key": "domain_pk_test"}
    ),
    ("DELETE", f"{WIDGET}/origins/{{origin_id}}"): Rule(Scope.widgets_write),
    ("GET", f"{ANALYTICS}/series"): Rule(Scope.analytics_read),
    ("GET", f"{ANALYTICS}/widgets"): Rule(Scope.analytics_read),
    ("GET", f"{ANALYTICS}/funnel"): Rule(Scope.analytics_read),
    ("GET", f"{ANALYTICS}/latency"): Rule(Scope.analytics_read),
    ("GET", f"{ANALYTICS}/errors"): Rule(Scope.analytics_read),
    ("GET", f"{ANALYTICS}/errors/{{id}}"): Rule(Scope.analytics_read),
    ("POST", f"{ANALYTICS}/errors/{{id}}/resolve"): Rule(Scope.widgets_write),
    ("GET", f"{ANALYTICS}/export/series.csv"): Rule(Scope.analytics_read),
    ("GET", f"{ANALYTICS}/export/events.csv"): Rule(Scope.analytics_read),
    ("POST", f"{ANALYTICS}/end-user-deletions"): Rule(
        END_USER_DATA, {"end_user": "a:anon_someone"}
    ),
    ("GET", f"{ANALYTICS}/settings"): Rule(Scope.analytics_read),
    ("PUT", f"{ANALYTICS}/settings"): Rule(END_USER_DATA, {"retention_days": 30}),
    ("GET", f"{PREFIX}/conversations"): Rule(Scope.conversations_read),
    ("GET", f"{PREFIX}/conversations/export.jsonl"): Rule(Scope.conversations_read),
    ("GET", f"{PREFIX}/conversations/export.csv"): Rule(Scope.conversations_read),
    ("GET", f"{PREFIX}/conversations/settings"): Rule(Scope.conversations_read),
    ("POST", f"{PREFIX}/conversations/exports"): Rule(
        Scope.conversations_read, {"format": "jsonl"}
    ),
    ("GET", f"{PREFIX}/conversations/exports/{{export_id}}"): Rule(Scope.conversations_read),
    ("PUT", f"{PREFIX}/conversations/settings"): Rule(
        Scope.members_write, {"editors_may_read": False}
    ),
    ("GET", f"{PREFIX}/conversations/{{thread_id}}"): Rule(Scope.conversations_read),
    ("DELETE", f"{PREFIX}/conversations/{{thread_id}}"): Rule(Scope.conversations_write),
    ("PATCH", f"{PREFIX}/conversations/{{thread_id}}/review"): Rule(
        Scope.conversations_write, {"reviewed": True}
    ),
    ("POST", HOOKS): Rule(
        Scope.webhooks_write, {"url": "https://hooks.example.com/k", "events": ["widget.published"]}
    ),
    ("GET", HOOKS): Rule(Scope.webhooks_write),
    ("PATCH", f"{HOOKS}/{{id}}"): Rule(Scope.webhooks_write, {"enabled": False}),
    ("DELETE", f"{HOOKS}/{{id}}"): Rule(Scope.webhooks_write),
    ("POST", f"{HOOKS}/{{id}}/rotate-secret"): Rule(Scope.webhooks_write),
    ("POST", f"{HOOKS}/{{id}}/test"): Rule(Scope.webhooks_write),
    ("GET", f"{HOOKS}/{{id}}/deliveries"): Rule(Scope.webhooks_write),
    ("POST", f"{HOOKS}/{{id}}/deliveries/{{delivery_id}}/replay"): Rule(Scope.webhooks_write),
    ("POST", KNOWLEDGE): Rule(Scope.knowledge_write, {"name": "made"}),
    ("GET", KNOWLEDGE): Rule(Scope.knowledge_read),
    ("GET", f"{KNOWLEDGE}/{{id}}"): Rule(Scope.knowledge_read),
    ("DELETE", f"{KNOWLEDGE}/{{id}}"): Rule(Scope.knowledge_write),
    ("POST", f"{KNOWLEDGE}/{{id}}/documents"): Rule(
        Scope.knowledge_write, files={"file": ("faq.md", b"# FAQ", "text/markdown")}
    ),
    ("DELETE", f"{KNOWLEDGE}/{{id}}/documents/{{document_id}}"): Rule(Scope.knowledge_write),
}

TESTED_APART: dict[tuple[str, str], str] = {
    ("DELETE", PREFIX): "an allowed call deletes the tenant every other call here needs; its "
    "callers (owners and platform admins, never a client) are tests/api/test_tenant_deletion.py's",
}
"""Routes this matrix cannot call, each with the reason and the test that covers them."""

Outcome = str | tuple[int, str]
ALLOWED: Outcome = "allowed"
UNAUTHENTICATED: Outcome = (401, "unauthenticated")
FORBIDDEN: Outcome = (403, "insufficient_scope")
HIDDEN: Outcome = (404, "tenant_not_found")


@dataclass(frozen=True)
class Caller:
    headers: dict[str, str]
    holds: frozenset[Scope] = frozenset()
    """The scopes the caller holds in the tenant."""
    refused: Outcome | None = None
    """The answer to every call, when the caller has no access to the tenant at all."""

    def expects(self, needs: frozenset[Scope]) -> Outcome:
        if self.refused is not None:
            return self.refused
        return ALLOWED if needs <= self.holds else FORBIDDEN


def tenant_routes(app: FastAPI) -> set[tuple[str, str]]:
    """The (method, path) of every API route under the tenant prefix. ``app.routes`` holds
    included routers unflattened; ``iter_route_contexts`` walks them as routing does."""
    return {
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
        and route.path is not None
        and route.path.startswith(PREFIX)
        for method in route.methods or ()
    }


def test_every_tenant_route_is_classified(app: FastAPI) -> None:
    routes = tenant_routes(app)
    assert sorted(routes - set(ROUTES) - set(TESTED_APART)) == [], "classify these in ROUTES"
    assert sorted(set(ROUTES) - routes) == [], "these routes no longer exist"
    assert sorted(set(TESTED_APART) - routes) == [], "these routes no longer exist"


Target = Callable[[], Awaitable[str]]


async def fill(path: str, tenant: Tenant, targets: dict[str, Target]) -> str:
    """``path`` with ``{tenant}`` and each other parameter replaced by a fresh real row."""
    url = path.replace("{tenant}", tenant.slug)
    for collection, param in re.findall(r"/([\w-]+)/\{(\w+)\}", url):
        url = url.replace(f"{{{param}}}", await targets[collection](), 1)
    assert "{" not in url, f"no target for a parameter of {path}"
    return url


def outcome(response: httpx2.Response) -> Outcome:
    status = response.status_code
    if status < 300 or (status < 500 and status not in {401, 403, 404, 422}):
        return ALLOWED
    return (status, response.json().get("code", ""))


async def test_isolation_matrix(client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession) -> None:
    tenant, other = await make_tenant(db, "acme"), await make_tenant(db, "other")
    settings = app.state.settings

    async def member() -> str:
        return str((await make_member(db, tenant, Role.viewer)).id)

    async def invitation() -> str:
        email = f"target-{secrets.token_hex(4)}@example.test"
        new = await create_invitation(
            db, settings, CLI, tenant, email=email, role=Role.viewer, invited_by=None
        )
        return str(new.invitation.id)

    async def api_client() -> str:
        new = await create_client(db, CLI, tenant, name="target", scopes=[Scope.widgets_read])
        return str(new.client.id)

    widgets: list[Widget] = []

    async def widget() -> str:
        widgets.append(await create_widget(db, CLI, tenant, name="target"))
        return str(widgets[-1].id)

    async def origin() -> str:
        """An origin of the widget filled in just before."""
        allowed = AllowedOrigin(
            tenant_id=tenant.id,
            widget_id=widgets[-1].id,
            origin=f"https://{secrets.token_hex(4)}.example.com",
        )
        db.add(allowed)
        await db.flush()
        return str(allowed.id)

    async def version() -> str:
        """Version 1 of the widget filled in just before (its revision stays 1)."""
        db.add(WidgetVersion(tenant_id=tenant.id, widget_id=widgets[-1].id, number=1, config={}))
        await db.flush()
        return "1"

    async def error_group() -> str:
        now = utcnow()
        group = ErrorGroup(
            tenant_id=tenant.id,
            widget_id=uuid.uuid4(),
            fingerprint=secrets.token_hex(32),
            kind="network",
            message="Failed",
            sample={},
            first_seen=now,
            last_seen=now,
            count=1,
        )
        db.add(group)
        await db.flush()
        return str(group.id)

    async def mcp_tool_id() -> str:
        """A tool id the widget's draft lacks (409: the handler ran, nothing connects)."""
        return "orders"

    bases: list[KnowledgeBase] = []

    async def knowledge_base() -> str:
        bases.append(KnowledgeBase(tenant_id=tenant.id, name="target"))
        db.add(bases[-1])
        await db.flush()
        return str(bases[-1].id)

    async def document() -> str:
        """A document of the knowledge base filled in just before."""
        made = KnowledgeDocument(
            tenant_id=tenant.id,
            knowledge_base_id=bases[-1].id,
            filename="target.md",
            content_type="text/markdown",
            size_bytes=1,
        )
        db.add(made)
        await db.flush()
        return str(made.id)

    async def chat_thread() -> str:
        """A thread of a widget of the tenant."""
        owner = await create_widget(db, CLI, tenant, name="chats")
        thread = ChatThread(
            id="thr_" + secrets.token_hex(8),
            tenant_id=tenant.id,
            widget_id=owner.id,
            end_user_id="u:1",
            payload={},
            payload_version=1,
        )
        db.add(thread)
        await db.flush()
        return thread.id

    async def export() -> str:
        made = ConversationExport(tenant_id=tenant.id, format="csv", filters={})
        db.add(made)
        await db.flush()
        return str(made.id)

    hooks: list[WebhookEndpoint] = []

    async def webhook() -> str:
        hooks.append(
            WebhookEndpoint(
                tenant_id=tenant.id,
                url="https://hooks.example.com/k",
                events=["widget.published"],
                secret="whsec_matrix",
            )
        )
        db.add(hooks[-1])
        await db.flush()
        return str(hooks[-1].id)

    async def delivery() -> str:
        """A delivery of the endpoint filled in just before."""
        made = WebhookDelivery(
            tenant_id=tenant.id,
            endpoint_id=hooks[-1].id,
            event_id="msg_target",
            event_type="widget.published",
            payload={"type": "widget.published", "data": {}},
        )
        db.add(made)
        await db.flush()
        return str(made.id)

    targets: dict[str, Target] = {
        "webhooks": webhook,
        "deliveries": delivery,
        "conversations": chat_thread,
        "exports": export,
        "knowledge-bases": knowledge_base,
        "documents": document,
        "members": member,
        "invitations": invitation,
        "clients": api_client,
        "widgets": widget,
        "origins": origin,
        "versions": version,
        "errors": error_group,
        "mcp-secrets": mcp_tool_id,
        "tools": mcp_tool_id,
    }
    callers = {
        "nobody": Caller({}, refused=UNAUTHENTICATED),
        "platform admin": Caller(
            (await login(app, db, await make_user(db, platform_admin=True))).headers, ALL_SCOPES
        ),
        "owner of another tenant": Caller(
            (await login(app, db, await make_member(db, other, Role.owner))).headers,
            refused=HIDDEN,
        ),
        "client of another tenant": Caller(
            (await client_token(app, db, other, list(Scope))).headers, refused=HIDDEN
        ),
    }
    for role in Role:
        user = await make_member(db, tenant, role)
        callers[role.value] = Caller((await login(app, db, user)).headers, ROLE_SCOPES[role])

    mismatches = []
    for (method, path), rule in sorted(ROUTES.items()):
        cases = dict(callers)
        held = rule.needs
        for scope in sorted(held):
            lacking = ALL_SCOPES - {scope}
            token = await client_token(app, db, tenant, sorted(lacking))
            cases[f"client lacking {scope.value}"] = Caller(token.headers, lacking)
        if rule.grants is not None:
            held |= ROLE_SCOPES[rule.grants]
        token = await client_token(app, db, tenant, sorted(held))
        cases["client holding just the route's scope"] = Caller(token.headers, held)
        for name, caller in cases.items():
            url = await fill(path, tenant, targets)
            if_match = {} if rule.if_match is None else {"If-Match": rule.if_match}
            headers = {**caller.headers, **if_match}
            response = await client.request(
                method, url, json=rule.body, files=rule.files, headers=headers
            )
            if outcome(response) != caller.expects(rule.needs):
                mismatches.append(
                    f"{method} {path} as {name}: expected {caller.expects(rule.needs)}, "
                    f"got {response.status_code} {response.text[:200]}"
                )
    assert not mismatches, "\n".join(mismatches)
