"""``/demo``: the demo tenant's first published widget on a small product page, embedded
with the real snippet (on when ``Settings.demo_page_on``)."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from kithost import rls
from kithost.db import session_scope
from kithost.demo import DEMO_SLUG
from kithost.errors import NotFound
from kithost.kit.headers import page_policy
from kithost.models import Tenant, Widget
from kithost.settings import Settings

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kithost demo: Acme Outdoor</title>
<link rel="icon" href="data:,">
<style>
body{{margin:0;font:16px/1.6 system-ui,sans-serif;color:#111827;background:#f9fafb}}
main{{max-width:720px;margin:0 auto;padding:48px 24px}}
h1{{font-size:2rem;margin:0 0 8px}}
.notice{{background:#fef3c7;border:1px solid #f59e0b;border-radius:8px;padding:12px 16px}}
pre{{background:#111827;color:#f9fafb;padding:16px;border-radius:8px;overflow-x:auto}}
</style>
</head>
<body>
<main>
<h1>Acme Outdoor</h1>
<p>Tents, packs and advice for the trail. Questions? The chat button at the bottom right is
a Kithost widget, embedded in this page with the snippet below.</p>
{notice}
<h2>The snippet</h2>
<pre><code>{snippet_text}</code></pre>
<p>Sign in to the dashboard as the demo owner to change the widget, or see the
<a href="/api/v1/docs">API</a>.</p>
</main>
{snippet}
</body>
</html>
"""
NO_KEY = (
    '<p class="notice" role="note">No OpenAI API key is set, so the chat answers from '
    "Kithost's demo model. Set <code>KITHOST_OPENAI_API_KEY</code> before <code>make run</code>"
    " (or the demo tenant's key) and it answers with the real model.</p>"
)


def snippet(settings: Settings, public_key: str) -> str:
    """The tag a tenant pastes into a page."""
    base = settings.base_url
    return f'<script async src="{base}/embed/{public_key}.js" data-widget="{public_key}"></script>'


@router.get("/demo")
async def demo_page(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    if not settings.demo_page_on:
        raise NotFound("The demo page is off.", code="demo_page_off")
    async with session_scope(request.app.state.sessionmaker) as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
        public_key = None
        if tenant is not None:
            await rls.set_tenant(session, tenant.id)
            public_key = await session.scalar(
                select(Widget.public_key)
                .where(Widget.tenant_id == tenant.id, Widget.published_version.is_not(None))
                .order_by(Widget.created_at)
                .limit(1)
            )
        has_key = tenant is not None and tenant.openai_api_key is not None
    if public_key is None:
        raise NotFound("There is no published demo widget: run `kithost demo`.", code="no_demo")
    tag = snippet(settings, public_key)
    no_key = settings.openai_api_key is None and not has_key
    base = settings.base_url
    html = PAGE.format(notice=NO_KEY if no_key else "", snippet_text=escape(tag), snippet=tag)
    policy = page_policy(
        f"default-src 'self'; script-src 'self' {base}; frame-src 'self' {base}",
        f"connect-src 'self' {base}; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": policy})
