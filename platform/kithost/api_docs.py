"""The API browser (Swagger UI) at ``/api/v1/docs``: FastAPI's page, under a
``Content-Security-Policy`` that runs Swagger UI's bundle and the page's own inline script
(by its hash) and nothing else."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from kithost.kit.headers import page_policy

DOCS_PATH = "/api/v1/docs"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
async def api_docs(request: Request) -> HTMLResponse:
    body, policy = _page(request.app.openapi_url, request.app.title)
    return HTMLResponse(body, headers={"Content-Security-Policy": policy})


@cache
def _page(openapi_url: str, title: str) -> tuple[str, str]:
    page = get_swagger_ui_html(openapi_url=openapi_url, title=f"{title} API")
    body = bytes(page.body).decode()
    inline = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(body)
    )
    cdn = {
        f"{url.scheme}://{url.netloc}"
        for url in map(urlsplit, re.findall(r'(?:src|href)="(https://[^"]+)"', body))
    }
    sources = " ".join(sorted(cdn))
    return body, page_policy(
        f"script-src {sources} {inline}",
        f"style-src {sources}",
        "frame-ancestors 'none'",
    )
