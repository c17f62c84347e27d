"""``GET /v1/embed/{pk}/config``: the published config for the loader, from memory.

Order of checks, so that nothing is looked up for a request no allowed page can send, and
nothing tells a foreign page more than that a widget key is published (which any page
embedding it shows anyway):

1. no ``Origin`` (but for a page on Kithost's own origin: the demo page, a preview), ``null``
   or not http(s) → 403 ``origin_not_allowed`` (before any lookup);
2. unknown key or nothing published → 404 ``widget_not_found``;
3. an origin none of the widget's entries allows → 403 ``origin_not_allowed``.

Errors carry no CORS headers (fail closed) and ``Cache-Control: no-store``, so that no cache
keeps a 404 past the publish. Successes are cacheable for a short while by browsers and
shared caches alike; they vary by ``Origin`` (the allowed origin is echoed, and the direct
placement's domain key depends on it), which a shared cache must respect.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kithost.kit.schemas import problems
from kithost.visitor.cache import published_answers
from kithost.visitor.routes import browser_origin, origin_not_allowed, visitor_route
from kithost.visitor.schemas import EmbedConfig
from kithost.visitor.service import Rendered

CONFIG_PATH = "/v1/embed/{pk}/config"
CACHE_CONTROL = b"public, max-age=60, stale-while-revalidate=300"


async def get_config(request: Request, pk: str) -> Response:
    origin, rendered = await _allowed(pk, request)
    if etag_matches(request.headers.get("if-none-match"), rendered.etag):
        response = Response(status_code=304)
    else:
        response = Response(rendered.body, media_type="application/json")
    # Appended already encoded: this runs for every visitor's page view.
    response.raw_headers += [
        (b"etag", rendered.etag.encode()),
        (b"cache-control", CACHE_CONTROL),
        (b"vary", b"Origin"),
        (b"access-control-allow-origin", origin.encode()),
    ]
    return response


async def config_origin(request: Request, pk: str) -> str:
    """The origin the config answers (its preflight's check)."""
    origin, _ = await _allowed(pk, request)
    return origin


router = APIRouter(tags=["embed"])
visitor_route(
    router,
    CONFIG_PATH,
    get_config,
    method="GET",
    allow_headers="If-None-Match",
    origin=config_origin,
    preflight_name="preflight_config",
    preflight_summary="CORS preflight for the configuration",
    summary="The published configuration of a widget, for its loader",
    response_model=EmbedConfig,
    responses={304: {"description": "Not modified (If-None-Match)"}, **problems(403, 404, 503)},
)


async def _allowed(pk: str, request: Request) -> tuple[str, Rendered]:
    """The requesting origin and its response, or the error that refuses it."""
    origin = browser_origin(request.headers.get("origin") or _own_page_origin(request))
    answers = await published_answers(request.app.state, pk)
    rendered = answers.for_origin(origin)
    if rendered is None:
        raise origin_not_allowed()
    return origin, rendered


def _own_page_origin(request: Request) -> str | None:
    """The origin of a page on Kithost itself (the demo page, a preview): browsers send no
    ``Origin`` on a same-origin GET, but say it is one (``Sec-Fetch-Site``, which no page
    can set)."""
    if request.headers.get("sec-fetch-site") != "same-origin":
        return None
    return f"{request.url.scheme}://{request.url.netloc}"


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: a weak comparison against the listed tags, or ``*``."""
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags
