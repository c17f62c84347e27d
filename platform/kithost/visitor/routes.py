"""How a visitor route is declared: the origin check every one shares, its CORS answers
and the fast route class.

A visitor route serves the pages of the sites a widget allows (and Kithost's own framed
page ``/w/{pk}``). :func:`visitor_route` registers it with its ``OPTIONS`` preflight in one
call. Both fail closed: a page the widget does not allow gets 403 ``origin_not_allowed``
without CORS headers, so it reads nothing; an allowed page gets :func:`cors_headers` (the
route adds them to its answers) or, for the preflight, :func:`preflight`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from kithost.errors import DATABASE_DOWN, Forbidden, KithostError, database_unavailable
from kithost.kit.origins import is_browser_origin
from kithost.kit.schemas import problems
from kithost.visitor.cache import published_answers
from kithost.visitor.service import Published

PREFLIGHT_MAX_AGE_SECONDS = 600

BROWSER_SCHEMES = ("https://", "http://")
"""How a browser spells the start of an ``Origin`` (lowercase): the only spelling admitted."""
OriginCheck = Callable[[Request, str], Awaitable[str]]
"""``(request, pk)`` → the origin a visitor route answers (``*``: any), or raises the refusal."""


class PathParamsRoute(APIRoute):
    """A route that calls its endpoint as ``endpoint(request, **path_params)``, directly.

    For the hot visitor routes: no dependency solving, no body, no response validation and
    none of FastAPI's per-request machinery. Their endpoints take the request and string
    path parameters and return a ready ``Response``; errors they raise reach the app's
    handlers as usual. OpenAPI still documents them from the signature and the route's
    ``response_model`` and ``responses``. Dependencies declared on such a route or its
    routers would not run: declare none.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in (self.methods or ()):
            await super().handle(scope, receive, send)  # 405, as any route answers
            return
        response: Response = await self.endpoint(Request(scope, receive), **scope["path_params"])
        await response(scope, receive, send)


def browser_origin(origin: str | None) -> str:
    """``origin`` if a browser could have sent it (:func:`kit.origins.is_browser_origin`),
    checked before any lookup; else 403 ``origin_not_allowed``. ``https://SHOP.example.com``
    or ``https://shop.example.com:443`` match an allowed ``https://shop.example.com`` once
    normalised, but no browser sends them, and the value would be echoed raw into
    ``Access-Control-Allow-Origin`` and bound into session tokens; a browser does send
    ``https://shop.example.com.``, but from another origin than the one allowed."""
    if origin is None or not origin.startswith(BROWSER_SCHEMES) or not is_browser_origin(origin):
        raise origin_not_allowed()
    return origin


async def visitor_origin(request: Request, public_key: str) -> tuple[str, Published]:
    """The requesting page's origin and the published widget, for a visitor route that
    serves the widget's pages and Kithost's framed page; 403 ``origin_not_allowed`` (no CORS
    headers: fail closed) for any other origin or none."""
    origin = browser_origin(request.headers.get("origin"))
    answers = await published_answers(request.app.state, public_key)
    if not answers.admits(origin, request.app.state.settings.own_origins):
        raise origin_not_allowed()
    return origin, answers.published


async def admitted_origin(request: Request, public_key: str) -> str:
    """:func:`visitor_origin`'s origin: the check of most visitor routes."""
    origin, _ = await visitor_origin(request, public_key)
    return origin


async def any_origin(request: Request, public_key: str) -> str:
    """For routes whose URL carries its own credential (signed attachment links)."""
    return "*"


def origin_not_allowed() -> Forbidden:
    """The refusal of every visitor route to a page it may not serve: no CORS headers."""
    return Forbidden(
        "This page may not use this widget.",
        code="origin_not_allowed",
        headers={"Cache-Control": "no-store", "Vary": "Origin"},
    )


def cors_headers(origin: str | None) -> dict[str, str]:
    """What a visitor route's answer to an allowed ``origin`` carries (never cached); with
    None, to a page that may read nothing of it."""
    headers = {"Vary": "Origin", "Cache-Control": "no-store"}
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
        # How long a 429 or 503 asks to wait: the loader retries a short one (events).
        headers["Access-Control-Expose-Headers"] = "Retry-After"
    return headers


def kithost_error(exc: Exception) -> KithostError | None:
    """The problem ``exc`` is when it is one (a :class:`KithostError`); None otherwise."""
    return exc if isinstance(exc, KithostError) else None


@contextmanager
def cors_problems(
    headers: dict[str, str],
    problem_for: Callable[[Exception], KithostError | None] = kithost_error,
) -> Iterator[None]:
    """Errors raised inside as problems (``problem_for``: the problem an exception stands
    for, None for a bug, which propagates as it is) with ``headers`` added: the CORS headers
    of the admitted origin. A page on another origin (the direct placement) reads only what
    carries ``Access-Control-Allow-Origin``: without it the loader sees a network failure
    where a 401 means "refresh", a 422 "fix the request" and a 429 "wait". The database
    away is its 503 ``database_unavailable`` (``Retry-After``), as the app answers it
    elsewhere, here readable by the page too."""
    try:
        yield
    except Exception as exc:
        problem = problem_for(exc)
        if problem is None and isinstance(exc, DATABASE_DOWN):
            problem = database_unavailable(exc)
        if problem is None:
            raise
        problem.headers = {**headers, **problem.headers}
        if problem is exc:
            raise
        raise problem from exc


def preflight(origin: str, *, method: str, headers: str) -> Response:
    """204 allowing ``origin`` (``*`` for any) to send ``method`` with request ``headers``;
    browsers keep it for :data:`PREFLIGHT_MAX_AGE_SECONDS`."""
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": method,
            "Access-Control-Allow-Headers": headers,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
            "Vary": "Origin",
        },
    )


def visitor_route(
    router: APIRouter,
    path: str,
    endpoint: Callable[..., Any],
    *,
    method: str,
    allow_headers: str,
    preflight_name: str,
    preflight_summary: str | None = None,
    preflight_statuses: tuple[int, ...] = (403, 404, 503),
    origin: OriginCheck = admitted_origin,
    route_class: type[APIRoute] = PathParamsRoute,
    **route: Any,
) -> None:
    """Add ``endpoint`` at ``method path`` to ``router`` (a :class:`PathParamsRoute` unless
    told otherwise; ``route``: ``add_api_route``'s other arguments) and its ``OPTIONS``
    preflight, which answers the pages ``origin`` lets through, allowing ``allow_headers``.

    The preflight is documented (as ``preflight_name``, its OpenAPI operation, with
    ``preflight_statuses``) when it has a ``preflight_summary``."""
    router.add_api_route(
        path, endpoint, methods=[method], route_class_override=route_class, **route
    )
    router.add_api_route(
        path,
        _preflight_endpoint(path, origin, method, allow_headers),
        methods=["OPTIONS"],
        route_class_override=PathParamsRoute,
        name=preflight_name,
        summary=preflight_summary,
        include_in_schema=preflight_summary is not None,
        status_code=204,
        response_class=Response,
        responses=problems(*preflight_statuses),
    )


def _preflight_endpoint(
    path: str, origin: OriginCheck, method: str, allow_headers: str
) -> Callable[..., Awaitable[Response]]:
    async def answer_preflight(request: Request, **path_params: str) -> Response:
        allowed = await origin(request, path_params["pk"])
        return preflight(allowed, method=method, headers=allow_headers)

    # What FastAPI reads to document the path parameters (the route passes them by name).
    answer_preflight.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)]
        + [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str)
            for name in re.findall(r"{(\w+)}", path)
        ]
    )
    return answer_preflight
