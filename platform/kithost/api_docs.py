"""The API browser (Swagger UI) at ``/api/v1/docs``: ``admin-ui``'s ``api-docs.html``, built
beside the dashboard with Swagger UI bundled in, under a ``Content-Security-Policy`` that runs
Kithost's own scripts and nothing else (the page shares the dashboard's origin and cookie).
Without a build it says how to make one (503 ``dashboard_not_built``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from kithost.dashboard.endpoints import DIST
from kithost.errors import ServiceUnavailable
from kithost.kit.headers import page_policy

DOCS_PATH = "/api/v1/docs"
PAGE = DIST / "api-docs.html"
CSP = page_policy(
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:; connect-src 'self'",
    "frame-ancestors 'none'",
)

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
async def api_docs() -> FileResponse:
    if not PAGE.is_file():
        raise ServiceUnavailable(
            "The API browser is not built: run `make build`.", code="dashboard_not_built"
        )
    return FileResponse(PAGE, headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP})
