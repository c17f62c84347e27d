"""Helpers for the widget API tests: tenant ``acme``'s owner, URLs, audit entries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import AuditLogEntry, Tenant, User

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


async def create(client: httpx.AsyncClient, acme: Acme, **body: Any) -> httpx.Response:
    """Create a widget of ``acme`` (named "Shop chat" unless ``name`` is given)."""
    response = await client.post(WIDGETS, json={"name": "Shop chat", **body}, headers=acme.headers)
    assert response.status_code == 201, response.text
    return response


def url(widget: httpx.Response | dict[str, Any], path: str = "") -> str:
    """The URL of a widget (from its creation's response or its JSON), plus ``path``."""
    data = widget.json() if isinstance(widget, httpx.Response) else widget
    return f"{WIDGETS}/{data['id']}{path}"


async def audit_entries(db: AsyncSession, tenant: Tenant, action: str) -> list[AuditLogEntry]:
    """The tenant's audit entries of ``action``, oldest first."""
    result = await db.execute(
        select(AuditLogEntry)
        .where(AuditLogEntry.tenant_id == tenant.id, AuditLogEntry.action == action)
        .order_by(AuditLogEntry.created_at)
    )
    return list(result.scalars())
