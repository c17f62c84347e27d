"""Helpers for the widget API tests: tenant ``acme``'s owner, URLs, audit entries, a
ChatKit options object using every data option, and an ``mcp`` tool and a widget whose draft
has tools."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import AuditLogEntry, Tenant, User, Widget
from tests.factories import set_draft

WIDGETS = "/api/v1/tenants/acme/widgets"


@dataclass(frozen=True)
class Acme:
    """Tenant ``acme`` and its owner, signed in to the dashboard."""

    tenant: Tenant
    owner: User
    headers: dict[str, str]

    def matching(self, etag: str) -> dict[str, str]:
        """The owner's headers with ``If-Match: etag``."""
        return {**self.headers, "If-Match": etag}


async def create(client: httpx2.AsyncClient, acme: Acme, **body: Any) -> httpx2.Response:
    """Create a widget of ``acme`` (named "Shop chat" unless ``name`` is given)."""
    response = await client.post(WIDGETS, json={"name": "Shop chat", **body}, headers=acme.headers)
    assert response.status_code == 201, response.text
    return response


def url(widget: httpx2.Response | dict[str, Any], path: str = "") -> str:
    """The URL of a widget (from its creation's response or its JSON), plus ``path``."""
    data = widget.json() if isinstance(widget, httpx2.Response) else widget
    return f"{WIDGETS}/{data['id']}{path}"


async def refused_tools(
    client: httpx2.AsyncClient, acme: Acme, tools: list[dict[str, Any]]
) -> tuple[httpx2.Response, list[tuple[str, str]]]:
    """A new widget of ``acme`` and the field and type of each error of the 422 problem
    that putting an agent with ``tools`` in its config gets."""
    widget = await create(client, acme)
    put = await client.put(
        url(widget, "/config"), json={"agent": {"tools": tools}}, headers=acme.matching('"1"')
    )
    assert put.status_code == 422, put.text
    assert put.headers["content-type"] == "application/problem+json"
    return widget, [(e["field"], e["type"]) for e in put.json()["errors"]]


async def audit_entries(db: AsyncSession, tenant: Tenant, action: str) -> list[AuditLogEntry]:
    """The tenant's audit entries of ``action``, oldest first."""
    result = await db.execute(
        select(AuditLogEntry)
        .where(AuditLogEntry.tenant_id == tenant.id, AuditLogEntry.action == action)
        .order_by(AuditLogEntry.created_at)
    )
    return list(result.scalars())


EVERY_OPTION: dict[str, Any] = {
    "locale": "de-DE",
    "theme": {
        "colorScheme": "dark",
        "radius": "soft",
        "density": "compact",
        "color": {
            "accent": {"primary": "#0f766e", "level": 2},
            "grayscale": {"hue": 220, "tint": 6, "shade": -1},
            "surface": {"background": "#101010", "foreground": "#fafafa"},
        },
        "typography": {
            "baseSize": 16,
            "fontFamily": "Inter, sans-serif",
            "fontFamilyMono": "JetBrains Mono, monospace",
            "fontSources": [
                {
                    "family": "Inter",
                    "src": "https://fonts.example.com/inter.woff2",
                    "weight": 400,
                    "style": "normal",
                    "display": "swap",
                }
            ],
        },
    },
    "frameTitle": "Support chat",
    "header": {"enabled": True, "title": {"enabled": True, "text": "Acme help"}},
    "history": {"enabled": True, "showDelete": False, "showRename": True},
    "startScreen": {
        "greeting": "How can we help?",
        "prompts": [
            {"label": "Track order", "prompt": "Where is my order?", "icon": "map-pin"},
            {"label": "Returns", "prompt": [{"type": "input_text", "text": "Return"}]},
            {"label": "Lucide", "prompt": "x", "icon": "lucide:rocket"},
        ],
    },
    "threadItemActions": {"feedback": True, "retry": True},
    "composer": {
        "placeholder": "Ask Acme",
        "attachments": {
            "enabled": True,
            "maxSize": {"image/*": 5_000_000, "*": 1_000_000},
            "maxCount": 3,
            "accept": {"image/*": [".png", ".jpg"]},
        },
        "tools": [{"id": "search", "label": "Search", "icon": "search", "pinned": True}],
        "models": [{"id": "fast", "label": "Fast", "default": True}],
        "dictation": {"enabled": True},
    },
    "disclaimer": {"text": "AI can make *mistakes*.", "highContrast": True},
    "thread": {"autoScroll": True},
}


# A hosted widget's configuration, as widgets made before Agent Builder's shutdown have it.
HOSTED: dict[str, Any] = {
    "mode": "hosted",
    "placement": "direct",
    "chatkit": {"theme": {"colorScheme": "dark"}, "startScreen": {"greeting": "Hi there"}},
    "launcher": {"label": "Ask Acme"},
    "require_identity": True,
    "hosted": {
        "workflow_id": "wf_68df4b13_acme",
        "state_variables": ["plan"],
        "chatkit_configuration": {
            "history": {"enabled": False, "recent_threads": 20},
            "file_upload": {"enabled": True, "max_file_size": 5, "max_files": 3},
            "automatic_thread_titling": {"enabled": True},
        },
        "max_requests_per_minute": 30,
    },
}


async def hosted_widget(client: httpx2.AsyncClient, acme: Acme, db: AsyncSession) -> str:
    """The URL of a widget of ``acme`` made hosted before Agent Builder's shutdown (its draft
    :data:`HOSTED`, at revision 2, nothing published): no widget becomes hosted since."""
    created = await create(client, acme)
    stored = await db.get_one(Widget, uuid.UUID(created.json()["id"]))
    set_draft(stored, {**stored.draft, **HOSTED})
    await db.flush()
    return url(created)


EXPORTS = Path(__file__).parent / "exports"


def export(name: str) -> str:
    """The Agent Builder export fixture ``exports/<name>.export.txt``."""
    return (EXPORTS / f"{name}.export.txt").read_text()


def mcp_tool(**extra: Any) -> dict[str, Any]:
    return {
        "type": "mcp",
        "id": "orders",
        "url": "https://mcp.acme.example/mcp",
        "allowed_tools": ["add", "order_status"],
        **extra,
    }


async def with_tools(
    client: httpx2.AsyncClient, acme: Acme, *tools: dict[str, Any]
) -> dict[str, Any]:
    """A new widget of acme's whose draft has ``tools``."""
    widget = await create(client, acme)
    put = await client.put(
        url(widget, "/config"),
        json={"agent": {"tools": list(tools)}},
        headers=acme.matching(widget.headers["ETag"]),
    )
    assert put.status_code == 200, put.text
    body: dict[str, Any] = put.json()
    return body
