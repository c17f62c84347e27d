"""The REST API: every domain router, mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from kithost.analytics.endpoints import router as analytics_router
from kithost.audit.endpoints import platform_router as platform_audit_router
from kithost.audit.endpoints import router as audit_router
from kithost.clients.endpoints import router as clients_router
from kithost.conversations.endpoints import downloads as downloads_router
from kithost.conversations.endpoints import router as conversations_router
from kithost.invitations.endpoints import router as invitations_router
from kithost.knowledge.endpoints import router as knowledge_router
from kithost.mcp_tools.endpoints import router as mcp_tools_router
from kithost.members.endpoints import router as members_router
from kithost.secrets.endpoints import router as secrets_router
from kithost.sessions.endpoints import router as sessions_router
from kithost.tenants.endpoints import router as tenants_router
from kithost.users.endpoints import router as auth_router
from kithost.webhooks.endpoints import router as webhooks_router
from kithost.widgets.endpoints import router as widgets_router

api_router = APIRouter(prefix="/api/v1")
for router in (
    auth_router,
    tenants_router,
    members_router,
    invitations_router,
    clients_router,
    widgets_router,
    secrets_router,
    sessions_router,
    audit_router,
    platform_audit_router,
    analytics_router,
    knowledge_router,
    conversations_router,
    downloads_router,
    webhooks_router,
    mcp_tools_router,
):
    api_router.include_router(router)
