"""Previews of a widget's draft: the real loader and framed page, on a short-lived key.

``POST …/widgets/{id}/preview`` signs a *preview key* (``pv_…``) that every visitor route
takes in place of a public key: the config, the loader, the framed page, sessions and the
ChatKit endpoint then serve the widget's current *draft* (``visitor.service.load_preview``),
to one origin only (the dashboard's, where the preview page is framed), for
``PREVIEW_TTL``. Nothing a preview does counts in analytics (``Published.preview``), and
its chats' threads are marked (``ChatThread.preview``): not a tenant's conversations.

A key is ``pv_`` + ``tenant.widget.expiry.origin`` (hex ids, Unix seconds, base64url) + ``.``
+ an HMAC-SHA256 of that with a key derived from the current encryption key: nothing is
stored, a forged or expired key is an unknown widget (404), and rotating the encryption key
ends every preview.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

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


def is_preview_key(public_key: str) -> bool:
    return public_key.startswith(PREFIX)


def issue(settings: Settings, preview: Preview) -> str:
    """The preview key for ``preview``."""
    origin = base64.urlsafe_b64encode(preview.origin.encode()).decode().rstrip("=")
    expiry = int(preview.expires_at.timestamp())
    payload = f"{preview.tenant_id.hex}.{preview.widget_id.hex}.{expiry}.{origin}"
    return PREFIX + signed(settings.keys(), PURPOSE, payload)


def read(settings: Settings, key: str, now: datetime) -> Preview | None:
    """The preview behind ``key``; None when it is malformed, forged or expired."""
    payload = verified(settings.keys(), PURPOSE, key.removeprefix(PREFIX))
    if payload is None:
        return None
    tenant, widget, expiry, origin = payload.split(".")
    expires_at = datetime.fromtimestamp(int(expiry), UTC)
    if expires_at <= now:
        return None
    decoded = base64.urlsafe_b64decode(origin + "=" * (-len(origin) % 4)).decode()
    return Preview(uuid.UUID(tenant), uuid.UUID(widget), decoded, expires_at)


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
