"""The tenants' analytics routes, ``/tenants/{tenant}/analytics/…``: one router per job
(each job's ``endpoints`` module says what its routes do). Visitors' events come in through
:mod:`kithost.analytics.ingestion.endpoints`, a visitor route mounted by ``app.py``."""

from __future__ import annotations

from fastapi import APIRouter

from kithost.analytics.errors.endpoints import router as errors_router
from kithost.analytics.reports.endpoints import router as reports_router
from kithost.analytics.retention.endpoints import router as retention_router

router = APIRouter(prefix="/tenants/{tenant}/analytics", tags=["analytics"])
for job in (reports_router, errors_router, retention_router):
    router.include_router(job)
