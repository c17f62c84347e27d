"""Staff changing one conversation at once (a double click, two members, a script): every
request is answered, never a 500; reviews at once leave one review holding one of the
notes, deletions at once delete and audit the conversation once, and a review racing the
deletion finds the conversation either there or gone; exports asked for at once stay
within the tenant's cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest
from sqlalchemy import func, select

from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.conversations import exports
from kithost.models import AuditLogEntry, ChatThread, ConversationExport, ConversationReview, Tenant
from kithost.settings import Settings
from kithost.widgets.service import create_widget
from tests.conversations.helpers import conversation
from tests.factories import Credentials, client_token
from tests.races import RacingApp, at_once, racing_app

AT_ONCE = 8


@dataclass
class Raced:
    racing: RacingApp
    tenant: Tenant
    staff: Credentials
    thread: str

    @property
    def url(self) -> str:
        return f"/api/v1/tenants/{self.tenant.slug}/conversations/{self.thread}"

    async def review(self, n: int) -> httpx2.Response:
        body = {"note": f"note {n}", "reviewed": n % 2 == 0}
        return await self.racing.client.patch(
            f"{self.url}/review", json=body, headers=self.staff.headers
        )

    async def delete(self, _: int) -> httpx2.Response:
        return await self.racing.client.delete(self.url, headers=self.staff.headers)

    async def threads(self) -> int:
        async with self.racing.arranging() as session:
            found = select(func.count()).where(ChatThread.id == self.thread)
            return await session.scalar(found) or 0

    async def reviews(self) -> int:
        async with self.racing.arranging() as session:
            found = select(func.count()).where(ConversationReview.thread_id == self.thread)
            return await session.scalar(found) or 0

    async def deletions_audited(self) -> int:
        async with self.racing.arranging() as session:
            audited = select(func.count()).where(
                AuditLogEntry.tenant_id == self.tenant.id,
                AuditLogEntry.action == "conversation.deleted",
            )
            return await session.scalar(audited) or 0


@pytest.fixture
async def raced(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Raced]:
    async with racing_app(settings, monkeypatch) as racing:
        async with racing.arranging() as session:
            tenant = await racing.tenant(session)
            widget = await create_widget(session, CLI, tenant, name="Support")
            thread = await conversation(session, widget, "u:1", ["Hello?", "Hi."])
            scopes = [Scope.conversations_read, Scope.conversations_write]
            staff = await client_token(racing.app, session, tenant, scopes)
        await racing.warm(AT_ONCE)
        yield Raced(racing, tenant, staff, thread)


def assert_answered(responses: list[httpx2.Response], *statuses: int) -> None:
    for response in responses:
        assert response.status_code in statuses, response.text
        if response.status_code == 404:
            assert response.json()["code"] == "conversation_not_found"


async def test_reviews_at_once_each_answered_one_review_kept(raced: Raced) -> None:
    """Each read no review and inserted one: all but the first were 500s on PostgreSQL."""
    responses = await at_once(AT_ONCE, raced.review)

    assert_answered(responses, 200)
    assert await raced.reviews() == 1
    async with raced.racing.arranging() as session:
        review = await session.scalar(
            select(ConversationReview).where(ConversationReview.thread_id == raced.thread)
        )
    assert review is not None
    assert review.note in {r.json()["note"] for r in responses}


async def test_deletions_at_once_delete_and_audit_once(raced: Raced) -> None:
    """Each found the thread before any deleted it: all answered 204, each audited."""
    responses = await at_once(AT_ONCE, raced.delete)

    assert_answered(responses, 204, 404)
    assert [r.status_code for r in responses].count(204) == 1
    assert await raced.threads() == 0
    assert await raced.deletions_audited() == 1


async def test_reviews_racing_the_deletion_find_it_there_or_gone(raced: Raced) -> None:
    """A review inserted for a thread deleted meanwhile broke its foreign key: a 500."""

    async def either(n: int) -> httpx2.Response:
        return await (raced.delete(n) if n == AT_ONCE // 2 else raced.review(n))

    responses = await at_once(AT_ONCE, either)

    assert_answered(responses, 200, 204, 404)
    assert responses[AT_ONCE // 2].status_code == 204
    assert await raced.threads() == 0
    assert await raced.reviews() == 0


async def test_exports_asked_at_once_stay_within_the_cap(raced: Raced) -> None:
    """Each counted the exports being written before any was recorded."""

    async def ask(_: int) -> httpx2.Response:
        url = f"/api/v1/tenants/{raced.tenant.slug}/conversations/exports"
        return await raced.racing.client.post(
            url, json={"format": "csv"}, headers=raced.staff.headers
        )

    responses = await at_once(AT_ONCE, ask)

    for response in responses:
        assert response.status_code in (202, 409), response.text
    assert [r.status_code for r in responses].count(202) == exports.MAX_PENDING
    async with raced.racing.arranging() as session:
        kept = select(func.count()).where(ConversationExport.tenant_id == raced.tenant.id)
        assert await session.scalar(kept) == exports.MAX_PENDING
