"""Previews of a widget's draft: the real loader and framed page, on a short-lived key.

``POST …/widgets/{id}/preview`` signs a *preview key* (``pv_…``) that every visitor route
takes in place of a public key: the config, the loader, the framed page, sessions and the
ChatKit endpoint then serve the widget's current *draft* (``visitor.service.load_preview``),
to one origin only (the dashboard's, where the preview page is framed), for
``PREVIEW_TTL``. Nothing a preview does counts in analytics (``Published.preview``), and
its chats' threads are marked (``ChatThread.preview``): not a tenant's conversations.

A key is ``pv_`` + ``tenant.widget.expiry.origin.maker`` (hex ids, Unix seconds, base64url,
the caller who asked as ``auth.standing.actor_text``) + ``.`` + an HMAC-SHA256 of that with
a key derived from the current encryption key: nothing is stored, a forged or expired key is
an unknown widget (404), and rotating the encryption key ends every preview. A preview
chats with the draft on the tenant's model key, so its sessions and chat requests also
check that the maker may still edit the widget (:func:`check_maker`: ``widgets:write``):
one removed, given a lower role or revoked (a client) gets 404 there from then on.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.auth.principals import Actor
from kithost.auth.scopes import Scope
from kithost.auth.standing import actor_of, actor_text, scopes_now
from kithost.errors import NotFound
from kithost.kit.headers import page_policy
from kithost.kit.signed import signed, verified
from kithost.models.base import utcnow
from kithost.settings import Settings

PREFIX = "pv_"
PURPOSE = b"kithost widget preview"
PREVIEW_TTL = timedelta(minutes=15)
PAGE_PATH = "/preview/{key}"


@dataclass(frozen=True)
class Preview:
    tenant_id: uuid.UUID
    widget_id: uuid.UUID
    origin: str
    """The only page origin that may show the preview."""
    expires_at: datetime
    made_by: Actor
    """Who asked for it: the preview ends for good once they may no longer edit the widget."""


def is_preview_key(public_key: str) -> bool:
    return public_key.startswith(PREFIX)


def issue(settings: Settings, preview: Preview) -> str:
    """The preview key for ``preview``."""
    origin = base64.urlsafe_b64encode(preview.origin.encode()).decode().rstrip("=")
    expiry = int(preview.expires_at.timestamp())
    maker = actor_text(preview.made_by)
    payload = f"{preview.tenant_id.hex}.{preview.widget_id.hex}.{expiry}.{origin}.{maker}"
    return PREFIX + signed(settings.keys(), PURPOSE, payload)


def read(settings: Settings, key: str, now: datetime) -> Preview | None:
    """The preview behind ``key``; None when it is malformed, forged or expired."""
    payload = verified(settings.keys(), PURPOSE, key.removeprefix(PREFIX))
    if payload is None:
        return None
    fields = payload.split(".")
    if len(fields) != 5:  # a key from before previews named their maker
        return None
    tenant, widget, expiry, origin, maker = fields
    expires_at = datetime.fromtimestamp(int(expiry), UTC)
    if expires_at <= now:
        return None
    decoded = base64.urlsafe_b64decode(origin + "=" * (-len(origin) % 4)).decode()
    return Preview(uuid.UUID(tenant), uuid.UUID(widget), decoded, expires_at, actor_of(maker))


async def check_maker(session: AsyncSession, settings: Settings, key: str) -> None:
    """404 ``widget_not_found`` (as for an expired key) unless the preview key's maker still
    holds ``widgets:write`` in its tenant; ``session`` is scoped to that tenant from here on
    (the key is signed by Kithost)."""
    preview = read(settings, key, utcnow())
    if preview is not None:
        await rls.set_tenant(session, preview.tenant_id)
        if Scope.widgets_write in await scopes_now(session, preview.tenant_id, preview.made_by):
            return
    raise NotFound(
        "No published widget has this key.",
        code="widget_not_found",
        headers={"Cache-Control": "no-store", "Vary": "Origin"},
    )


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview of the draft</title>
<style>body{{margin:0;font:14px/1.5 system-ui,sans-serif;color:#374151;background:#f3f4f6}}
p{{margin:16px}}</style>
</head>
<body>
<p>Preview of the draft: what a visitor sees once it is published.</p>
<script async src="{src}" data-widget="{key}" data-open="true"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get(PAGE_PATH)
async def preview_page(request: Request, key: str) -> HTMLResponse:
    """The page the dashboard frames: the loader, as the snippet embeds it, on the draft."""
    settings: Settings = request.app.state.settings
    preview = read(settings, key, utcnow()) if is_preview_key(key) else None
    if preview is None:
        raise NotFound("This preview has expired or does not exist.", code="preview_not_found")
    src = escape(f"/embed/{key}.js")
    return HTMLResponse(
        PAGE.format(src=src, key=escape(key)),
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": page_policy(
                "script-src 'self'", f"frame-ancestors {preview.origin}"
            ),
        },
    )
