"""The loader's scripts and the framed widget page ``/w/{pk}``.

``/embed/{pk}.js`` is what tenants paste: the loader with the widget's launcher preset, so
that the button shows without waiting for the config. A script tag sends no dependable
``Origin``, so this script is the same for every page and holds only the launcher's look;
the config (ChatKit's options, actions, domain key) stays refused to origins the widget does
not allow, and the loader takes the button away when it is (see ``embed/src/embed.ts``). It is
cached as the config is (a republish shows within the same minute), revalidated by ETag, and
404 ``widget_not_found`` (``no-store``) until the widget is published. ``/embed.js``, the
loader alone for the older ``data-widget`` snippet, is cached briefly (a deploy reaches
visitors within minutes) and revalidated by ETag. The content-hashed URLs
(``/embed/loader.{hash}.js``, ``/w/frame.{hash}.js``, ``/w/direct.{hash}.js``) never change,
so they are cached for a year. All are served from memory, gzipped when the client accepts
it. Every URL here is under ``/embed/`` or ``/w/`` but ``/embed.js``: a visitor host that
routes only those (the Helm chart's Ingress) serves them all.
The framed page ``/w/{pk}`` is revalidated on every load (``no-cache``, its ETag covering the
page and its ``Content-Security-Policy``): its ``frame-ancestors`` is the widget's allowed
origins as the config cache has them now, so a removed origin stops framing the chat on the
next page load (within the cache's few seconds), whatever the browser kept.
Each answers ``HEAD`` too (caches and uptime checks send it): the same status and headers,
no body. It is ``GET``'s by definition, so the API document does not list it apart.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from kithost.errors import NotFound
from kithost.kit.headers import page_policy
from kithost.kit.schemas import problems
from kithost.visitor.cache import find_answers, published_answers
from kithost.visitor.config import CACHE_CONTROL, etag_matches
from kithost.visitor.loader import service
from kithost.visitor.loader.service import Bundle, Script
from kithost.visitor.routes import PathParamsRoute

SHORT_CACHE = "public, max-age=300, stale-while-revalidate=86400"
IMMUTABLE = "public, max-age=31536000, immutable"
FRAME_CACHE = "no-cache"
"""The framed page is kept only to be revalidated: its CSP must never be a stale one."""
WIDGET_CACHE = CACHE_CONTROL.decode()

router = APIRouter(tags=["embed"], route_class=PathParamsRoute)


def _serve(request: Request, script: Script, cache_control: str) -> Response:
    headers = {
        "ETag": script.etag,
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if script.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = script.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = script.gzipped, "gzip"
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


Endpoint = Callable[..., Awaitable[Response]]


def _get(path: str, endpoint: Endpoint, **route: Any) -> None:
    """Add ``GET path`` (``route``: ``add_api_route``'s other arguments) and its ``HEAD``."""
    router.add_api_route(path, endpoint, methods=["GET"], **route)
    router.add_api_route(
        path,
        _headers_only(endpoint),
        methods=["HEAD"],
        name=f"head_{endpoint.__name__}",
        include_in_schema=False,
    )


def _headers_only(endpoint: Endpoint) -> Endpoint:
    """``endpoint``'s answer without its body (``Content-Length`` still the body's), for
    ``HEAD``: left to the server, a body would go out to some (not every server drops it)."""

    @functools.wraps(endpoint)
    async def head(request: Request, **path_params: str) -> Response:
        answer = await endpoint(request, **path_params)
        return Response(status_code=answer.status_code, headers=dict(answer.headers))

    return head


async def get_loader(request: Request) -> Response:
    return _serve(request, service.bundle().embed, SHORT_CACHE)


_get(
    "/embed.js", get_loader, summary="The loader", response_class=Response, responses=problems(503)
)


def _add_hashed_route(path: str, summary: str, pick: Callable[[Bundle], Script]) -> None:
    """``path`` (with ``{hash}``) serves the current build of one script, immutable."""

    async def get_hashed(request: Request, hash: str) -> Response:
        script = pick(service.bundle())
        if hash != script.hash:
            raise NotFound("No such version of the script.", code="script_not_found")
        return _serve(request, script, IMMUTABLE)

    _get(
        path,
        get_hashed,
        summary=summary,
        response_class=Response,
        responses=problems(404, 503),
    )


_add_hashed_route(
    "/embed/loader.{hash}.js", "The loader at its content-hashed, immutable URL", lambda b: b.embed
)
_add_hashed_route(
    "/w/frame.{hash}.js", "The framed page's script (content-hashed, immutable)", lambda b: b.frame
)
_add_hashed_route(
    "/w/direct.{hash}.js",
    "The direct placement's script, which the loader loads (content-hashed, immutable)",
    lambda b: b.direct,
)


async def get_widget_loader(request: Request, pk: str) -> Response:
    answers = await published_answers(request.app.state, pk)
    return _serve(request, service.widget_loader(answers.published), WIDGET_CACHE)


# After the loader's hashed URL, which ``{pk}`` would take (``loader.{hash}`` is no key).
_get(
    "/embed/{pk}.js",
    get_widget_loader,
    summary="The loader with a widget's launcher preset (the snippet to paste)",
    response_class=Response,
    responses={304: {"description": "Not modified (If-None-Match)"}, **problems(404, 503)},
)


async def get_frame(request: Request, pk: str) -> Response:
    answers = await find_answers(request.app.state, pk)
    if answers is None:
        # Shown in the loader's iframe on whichever page embeds the key: framable by any.
        headers = {
            "Cache-Control": "no-store",
            "Content-Security-Policy": page_policy("default-src 'none'", "frame-ancestors *"),
        }
        return HTMLResponse(service.NOT_AVAILABLE_PAGE, status_code=404, headers=headers)
    published, settings = answers.published, request.app.state.settings
    frame = service.bundle().frame
    page = service.frame_page(published, settings, f"frame.{frame.hash}.js").encode()
    policy = service.frame_policy(published, settings)
    digest = hashlib.blake2b(page, digest_size=16)
    digest.update(policy.encode())
    headers = {
        "Content-Security-Policy": policy,
        "Cache-Control": FRAME_CACHE,
        "ETag": f'"{digest.hexdigest()}"',
        "X-Content-Type-Options": "nosniff",
    }
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return HTMLResponse(page, headers=headers)


_get(
    "/w/{pk}",
    get_frame,
    summary="The framed widget page, for the loader's iframe",
    response_class=HTMLResponse,
    responses={
        304: {"description": "Not modified (If-None-Match)"},
        404: {"description": "No published widget has this key"},
        **problems(503),
    },
)
