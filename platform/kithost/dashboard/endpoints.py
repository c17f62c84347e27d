"""``/admin/`` (where ``/`` leads): the dashboard's page and hashed assets, from ``dist/``.

``make build`` writes ``admin-ui``'s Vite build here. Assets (``/admin/assets/…``) carry a
content hash in their names, so they are cached for a year; every other path under
``/admin/`` is a client-side route and answers ``index.html`` (never cached, so a deploy
shows at once), with a Content-Security-Policy that allows only Kithost's own scripts, and
no framing. Without a build, ``/admin/`` says how to make one (503 ``dashboard_not_built``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from kithost.errors import NotFound, ServiceUnavailable
from kithost.kit.headers import page_policy

DIST = Path(__file__).parent / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
CSP = page_policy(
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'",
    "frame-ancestors 'none'",
)

router = APIRouter(include_in_schema=False)


# HEAD as well as GET (FastAPI adds none): uptime checks ask that way.
@router.api_route("/", methods=["GET", "HEAD"])
@router.api_route("/admin", methods=["GET", "HEAD"])
async def home() -> Response:
    return RedirectResponse("/admin/", status_code=307)


@router.api_route("/admin/{path:path}", methods=["GET", "HEAD"])
async def dashboard(path: str) -> Response:
    if path.startswith("assets/"):
        asset = (DIST / path).resolve()
        if asset.parent != (DIST / "assets").resolve() or not asset.is_file():
            raise NotFound("No such dashboard asset.", code="asset_not_found")
        return FileResponse(asset, headers={"Cache-Control": IMMUTABLE})
    index = DIST / "index.html"
    if not index.is_file():
        raise ServiceUnavailable(
            "The dashboard is not built: run `make build`.", code="dashboard_not_built"
        )
    return FileResponse(
        index, headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP}
    )
