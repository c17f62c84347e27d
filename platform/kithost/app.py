"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

import kithost
from kithost import rls
from kithost.analytics.facts import FactBuffer
from kithost.analytics.ingestion.endpoints import EventsHandover
from kithost.analytics.ingestion.endpoints import visitor_router as analytics_visitor_router
from kithost.api import api_router
from kithost.api_docs import router as api_docs_router
from kithost.auth import oidc
from kithost.auth.oauth_endpoints import router as oauth_router
from kithost.auth.signing import KEY_RING, KeyRing
from kithost.chat.endpoints import router as chat_router
from kithost.chat.runtime import create_runtime, prepare_process
from kithost.dashboard.endpoints import router as dashboard_router
from kithost.db import create_engine, create_sessionmaker
from kithost.demo_page import router as demo_router
from kithost.errors import install_error_handlers
from kithost.health.endpoints import router as health_router
from kithost.health.metrics import MetricsMiddleware
from kithost.kit.edge import install_edge
from kithost.kit.headers import SecurityHeadersMiddleware
from kithost.kit.keys import Purpose
from kithost.kit.limits import LimitsMiddleware
from kithost.kit.nul import install_nul_check
from kithost.kit.ratelimit import create_rate_limiter
from kithost.kit.schemas import document_problems
from kithost.kit.upstream import ModelClients
from kithost.log import configure_logging
from kithost.middleware import RequestContextMiddleware
from kithost.sessions.endpoints import visitor_router as sessions_visitor_router
from kithost.sessions.recorder import MintRecorder
from kithost.settings import Environment, Settings, get_settings
from kithost.state import AppState
from kithost.visitor.cache import ConfigCache
from kithost.visitor.config import router as visitor_config_router
from kithost.visitor.loader.endpoints import router as visitor_loader_router
from kithost.widgets.preview import router as preview_router
from kithost.worker.app import create_celery
from kithost.worker.enqueue import PendingTasks


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(level=settings.log_level, json=settings.json_logs)
    celery = create_celery(settings)
    engine = create_engine(
        settings.database,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    rls.check_binding(engine, refuse=settings.env is Environment.production)
    state = AppState(
        settings=settings,
        engine=engine,
        celery=celery,
        sessionmaker=create_sessionmaker(engine, PendingTasks(celery), {KEY_RING: KeyRing()}),
        rate_limiter=create_rate_limiter(settings.redis_url),
        oidc=oidc.create_client(settings),
    )
    # Each after the parts it uses: they are closed in the opposite order.
    state.add(
        FactBuffer(celery),
        ConfigCache(chatkit_script=settings.chatkit_script_url, wait=settings.config_wait_seconds),
        MintRecorder(state.sessionmaker),
        EventsHandover(celery, settings.events_max_in_flight),
        ModelClients(settings.openai_timeout_seconds, settings.outbound_policy),
    )
    state.add(create_runtime(state))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        prepare_process()
        yield
        await state.aclose()

    app = FastAPI(
        title="Kithost",
        version=kithost.__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # api_docs.py: the page under a policy of its own
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state = state
    install_error_handlers(app)
    document_problems(app)
    # Authlib keeps the OIDC flow's state, nonce and PKCE verifier here (auth/oidc.py).
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.keys().current(Purpose.oidc_flow).hex(),
        session_cookie=oidc.SESSION_COOKIE,
        max_age=oidc.SESSION_MAX_AGE_SECONDS,
        path=oidc.SESSION_PATH,
        same_site="lax",
        https_only=settings.https,
    )
    install_nul_check(app)  # inside the host check and the limits, which answer first
    install_edge(
        app,
        allowed_hosts=settings.allowed_host_list,
        trusted_proxies=settings.trusted_proxy_list,
    )
    app.add_middleware(LimitsMiddleware, limits=settings.limits)
    app.add_middleware(
        SecurityHeadersMiddleware, hsts=settings.env is Environment.production and settings.https
    )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(MetricsMiddleware)
    # Visitor routes first: routes are matched one by one, and these are the hot ones.
    app.include_router(visitor_config_router)
    app.include_router(sessions_visitor_router)
    app.include_router(analytics_visitor_router)
    app.include_router(visitor_loader_router)
    app.include_router(chat_router)
    app.include_router(health_router)
    app.include_router(oauth_router)
    app.include_router(api_router)
    app.include_router(demo_router)
    app.include_router(dashboard_router)
    app.include_router(preview_router)
    app.include_router(api_docs_router)
    return app
