"""Session minting over HTTP: for visitors (``POST /v1/embed/{pk}/session``) and for
tenant backends (``POST /api/v1/tenants/{tenant}/widgets/{id}/sessions``).

The visitor route is fail-closed like the config endpoint: no ``Origin``, one not spelled
as browsers send it (``visitor.routes.browser_origin``) or one the widget does not allow →
403 ``origin_not_allowed``, with no CORS headers; unknown key → 404 ``widget_not_found``.
That check runs before the body is read, and every later problem (401, 422 — the body's
too —, 429, 502, 503) carries CORS headers, so the loader of a page on another origin reads
its status (``identity_required``, ``rate_limited``…) instead of a network failure.

The framed placement calls it from Kithost's own page (``/w/{pk}``), whose origin is
Kithost's; that page may be framed only by the widget's allowed origins
(``frame-ancestors``), so the visitor's site is checked there when the page loads, and it
reports that site (``embedder``), which must be allowed when the session is minted and
when it is refreshed (403 ``embedder_not_allowed``; ``service.embedder_of``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from kithost import rls
from kithost.analytics.facts import AppFacts
from kithost.auth.dependencies import SessionsMint
from kithost.db import DbSession
from kithost.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    KithostError,
    invalid_field,
    invalid_request,
)
from kithost.health.metrics import mint_outcome
from kithost.kit.origins import InvalidOrigin, normalize_origin, origin_of
from kithost.kit.ratelimit import client_key
from kithost.kit.schemas import problems
from kithost.models import Placement
from kithost.sessions import service
from kithost.sessions.identity import EndUser
from kithost.sessions.recorder import AppMintRecorder
from kithost.sessions.schemas import BackendSessionRequest, MintedSession, VisitorSessionRequest
from kithost.state import AppRateLimiter, AppSecretBox, AppSettings
from kithost.visitor import service as visitor_service
from kithost.visitor.routes import (
    admitted_origin,
    cors_headers,
    cors_problems,
    kithost_error,
    visitor_origin,
    visitor_route,
)
from kithost.visitor.service import Published
from kithost.widgets.service import get_widget

visitor_router = APIRouter(tags=["embed"])
router = APIRouter(tags=["sessions"])

SESSION_PATH = "/v1/embed/{pk}/session"


class AdmittedRoute(APIRoute):
    """The session route: its origin checked before FastAPI reads the body (403 without
    CORS headers), then every problem — the body's validation included, which FastAPI
    raises before the endpoint runs — answered with the admitted origin's CORS headers.
    The endpoint reads the admitted origin and widget with :func:`admitted`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def admitted_handle(request: Request) -> Response:
            origin, target = await visitor_origin(request, request.path_params["pk"])
            request.state.admitted = (origin, target)
            with cors_problems(cors_headers(origin), _problem_for):
                return await handle(request)

        return admitted_handle


def admitted(request: Request) -> tuple[str, Published]:
    """The origin and published widget :class:`AdmittedRoute` admitted the request for."""
    origin: str
    target: Published
    origin, target = request.state.admitted
    return origin, target


def _problem_for(exc: Exception) -> KithostError | None:
    if isinstance(exc, RequestValidationError):  # as the app's handler answers it
        return invalid_request(exc)
    if isinstance(exc, HTTPException) and exc.status_code == 400:
        # A body FastAPI could not parse at all (JSON nested past the parser's recursion
        # limit, a number of thousands of digits): its 400, as the app's handler answers it.
        return BadRequest(exc.detail)
    return kithost_error(exc)


async def visitor_session(
    pk: str,
    request: Request,
    response: Response,
    body: VisitorSessionRequest,
    session: DbSession,
    settings: AppSettings,
    box: AppSecretBox,
    limiter: AppRateLimiter,
    facts: AppFacts,
    later: BackgroundTasks,
    recorder: AppMintRecorder,
) -> MintedSession:
    origin, target = admitted(request)
    await rls.set_tenant(session, target.tenant_id)
    with mint_outcome(target.widget_config.mode.value):
        client = client_key(request.client.host) if request.client else "unknown"
        await service.limit(
            limiter, f"mint:ip:{target.widget_id}:{client}", settings.mint_limit_per_client
        )
        if body.current is not None:
            end_user = await service.refreshed_end_user(
                session, settings, box, target, current=body.current, origin=origin
            )
        else:
            end_user = await service.end_user_of(
                session,
                box,
                target,
                identity_token=body.identity_token,
                device_id=body.device_id,
            )
        embedder = service.embedder_of(
            settings, target, origin, reported=body.embedder, kept=end_user.embedder
        )
        await service.limit(
            limiter, f"mint:user:{target.widget_id}:{end_user.id}", settings.mint_limit_per_user
        )
        minted = await service.mint(
            session,
            settings,
            box,
            facts,
            target,
            end_user=end_user,
            origin=origin,
            context=body.context,
            later=later,
            recorder=recorder,
            embedder=embedder,
        )
    response.headers.update(cors_headers(origin))
    return minted


visitor_route(
    visitor_router,
    SESSION_PATH,
    visitor_session,
    method="POST",
    allow_headers="Content-Type",
    preflight_name="visitor_session_preflight",
    origin=admitted_origin,
    route_class=AdmittedRoute,
    summary="Mint or refresh a visitor's ChatKit credential",
    responses=problems(401, 403, 404, 422, 429, 502, 503),
)


@router.post(
    "/tenants/{tenant}/widgets/{id}/sessions",
    summary="Mint a ChatKit credential for a user the tenant's backend has authenticated",
    responses=problems(401, 403, 404, 409, 422, 502, 503),
)
async def backend_session(
    id: uuid.UUID,
    access: SessionsMint,
    body: Annotated[BackendSessionRequest, Body()],
    session: DbSession,
    settings: AppSettings,
    box: AppSecretBox,
    facts: AppFacts,
    later: BackgroundTasks,
    recorder: AppMintRecorder,
) -> MintedSession:
    widget = await get_widget(session, access.tenant, id)
    # From the database, not the cache: a backend may mint right after publishing.
    target = (await visitor_service.load(session, widget.public_key)).published
    if target is None:
        raise Conflict("Publish the widget first.", code="widget_not_published")
    page = _page_origin(body.origin)
    if page is not None and not target.allows(page):
        raise Forbidden("That origin may not use this widget.", code="origin_not_allowed")
    framed = target.widget_config.placement is Placement.framed
    with mint_outcome(target.widget_config.mode.value):
        return await service.mint(
            session,
            settings,
            box,
            facts,
            target,
            end_user=EndUser(id=f"u:{body.user}", verified=True),
            # A framed chat calls Kithost from Kithost's own page, where visitors load it.
            origin=page or (origin_of(settings.visitor_base_url) if framed else None),
            context=body.context,
            later=later,
            recorder=recorder,
        )


def _page_origin(origin: str | None) -> str | None:
    """The page a backend names, as its browser will send its ``Origin`` (the token is bound
    to that): ``https://SHOP.example.com/`` is ``https://shop.example.com``; 422 on
    ``origin`` for what is no origin."""
    if origin is None:
        return None
    try:
        return normalize_origin(origin)
    except InvalidOrigin as exc:
        raise invalid_field("origin", str(exc)) from exc
