"""Conversations over REST: the tenant's threads listed, filtered and searched (never
another tenant's), read (each read audited), exported as JSON lines a page at a time, and
deleted (audited); owners and admins only; anonymous visitors never shown in clear."""

from __future__ import annotations

import csv
import io
import json
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import rls
from kithost.auth.principals import CLI
from kithost.auth.roles import ROLE_SCOPES
from kithost.auth.scopes import Scope
from kithost.conversations import exports, repository, service
from kithost.conversations.schemas import ConversationFilters
from kithost.db import session_scope
from kithost.kit import cursors
from kithost.models import (
    AnalyticsEvent,
    AuditLogEntry,
    ChatAttachment,
    ChatItem,
    ChatThread,
    ConversationExport,
    ExportStatus,
    Role,
    Tenant,
    Widget,
)
from kithost.models.base import utcnow
from kithost.storage import LocalDiskStorage
from kithost.widgets.service import create_widget
from tests.api.helpers import audit_actions
from tests.chat.helpers import assert_problem
from tests.conversations.helpers import (
    ANONYMOUS,
    CONVERSATIONS,
    acme_with_chats,
    conversation,
    listed,
)
from tests.factories import client_token, login, make_member, make_tenant
from tests.workers import RecordedTasks


async def test_the_list_filters_and_searches_the_tenants_threads_only(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    _tenant, owner, threads = await acme_with_chats(app, db)
    everything = await client.get(CONVERSATIONS, headers=owner.headers)
    rows = everything.json()["data"]
    assert [r["id"] for r in rows] == [threads["returns"], threads["anonymous"], threads["blog"]]
    returns, anonymous, _ = rows
    assert (returns["end_user"], returns["messages"], returns["positive_feedback"]) == (
        "u:42",
        2,
        1,
    )
    assert anonymous["end_user"].startswith("a:h_")
    assert ANONYMOUS not in everything.text
    assert anonymous["messages"] == 4

    shop = returns["widget_id"]
    assert await listed(client, owner, widget=shop) == [threads["returns"], threads["anonymous"]]
    assert await listed(client, owner, feedback="negative") == [threads["anonymous"]]
    assert await listed(client, owner, feedback="any") == [threads["returns"], threads["anonymous"]]
    assert await listed(client, owner, min_messages=3) == [threads["anonymous"]]
    assert await listed(client, owner, end_user="u:42") == [threads["returns"]]
    assert await listed(client, owner, q="return") == [threads["returns"]], "not theirs"
    assert await listed(client, owner, q="Norway") == [threads["anonymous"]]
    since = utcnow() - timedelta(minutes=90)
    assert await listed(client, owner, since=since.isoformat()) == [threads["returns"]]
    far_west = since.astimezone(timezone(timedelta(hours=-14))).isoformat()
    assert await listed(client, owner, since=far_west) == [threads["returns"]], "that instant"
    assert await listed(client, owner, until=far_west) == [threads["anonymous"], threads["blog"]]

    first = (await client.get(CONVERSATIONS, params={"limit": 2}, headers=owner.headers)).json()
    rest = await listed(client, owner, limit=2, before=first["next"])
    assert rest == [threads["blog"]]


async def test_a_widget_filter_names_one_of_the_tenants_widgets(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """Another tenant's widget, or none, is a 404 as in analytics (an empty list would say
    it has no conversations), and nothing is exported or audited for it."""
    tenant, owner, threads = await acme_with_chats(app, db)
    theirs = await db.scalar(select(ChatThread.widget_id).where(ChatThread.id == threads["theirs"]))
    audited = await audit_actions(db, tenant.id)

    for widget in (theirs, uuid.uuid4()):
        params = {"widget": str(widget)}
        for refused in (
            await client.get(CONVERSATIONS, params=params, headers=owner.headers),
            await client.get(f"{CONVERSATIONS}/export.jsonl", params=params, headers=owner.headers),
            await client.get(f"{CONVERSATIONS}/export.csv", params=params, headers=owner.headers),
            await client.post(
                f"{CONVERSATIONS}/exports",
                json={"format": "csv", "filters": params},
                headers=owner.headers,
            ),
        ):
            assert_problem(refused, 404, "widget_not_found")

    assert await audit_actions(db, tenant.id) == audited
    assert await db.scalar(select(func.count()).select_from(ConversationExport)) == 0


async def test_the_next_page_goes_on_when_the_last_thread_shown_changes_or_goes(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """``next`` names a position in the list (last activity, id), not a thread: after a
    page whose last thread then gets a message (it moves to the top) or is deleted, the
    next page goes on with the threads after it, repeating and skipping none."""
    tenant, owner, threads = await acme_with_chats(app, db)
    older = await _older_conversations(db, tenant, 2)

    def page(response: httpx2.Response) -> tuple[list[str], str | None]:
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["data"]], response.json()["next"]

    shown, after = page(await client.get(CONVERSATIONS, params={"limit": 2}, headers=owner.headers))
    assert shown == [threads["returns"], threads["anonymous"]]
    moved = await db.get(ChatThread, threads["anonymous"])
    assert moved is not None
    moved.updated_at = utcnow()  # a new message
    await db.flush()
    params = {"limit": 2, "before": after}
    shown, after = page(await client.get(CONVERSATIONS, params=params, headers=owner.headers))
    assert shown == [threads["blog"], older[0]]
    deleted = await client.delete(f"{CONVERSATIONS}/{older[0]}", headers=owner.headers)
    assert deleted.status_code == 204, deleted.text
    params = {"limit": 2, "before": after}
    shown, after = page(await client.get(CONVERSATIONS, params=params, headers=owner.headers))
    assert (shown, after) == ([older[1]], None)
    assert await listed(client, owner) == [
        threads["anonymous"],
        threads["returns"],
        threads["blog"],
        older[1],
    ]

    holding_nul = cursors.encode(utcnow(), "thr_\x00")  # PostgreSQL refused it: a 500
    for cursor in (
        threads["blog"],
        "bm90IGEgY3Vyc29y",
        "%%%",
        holding_nul,
    ):  # a thread's id is none
        bad = await client.get(CONVERSATIONS, params={"before": cursor}, headers=owner.headers)
        assert bad.status_code == 422, bad.text
        assert bad.json()["errors"][0]["field"] == "before"


HOUR_AGO = "2026-01-01T11:00:00+00:00"


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"since": "2026-01-01"}, "since"),  # no time zone: which instant?
        ({"until": "2026-01-01T00:00:00"}, "until"),
        ({"since": "9999-12-31T23:59:59-14:00"}, "since"),  # past year 9999 in UTC
        ({"until": "0001-01-01T00:00:00+14:00"}, "until"),  # before year 1 in UTC
        # filters that can match nothing: an empty list would say there is no such
        # conversation. A range ending before it starts, or where it starts (the same
        # instant in another zone)
        ({"since": "2026-01-01T12:00:00+00:00", "until": HOUR_AGO}, "until"),
        ({"since": HOUR_AGO, "until": "2026-01-01T12:00:00+01:00"}, "until"),
        # how the list shows an anonymous visitor: a keyed hash, matching no stored id
        ({"end_user": "a:h_" + "0" * 32}, "end_user"),
    ],
)
async def test_a_filter_that_is_no_filter_is_refused_by_the_list_and_every_export(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    filters: dict[str, str],
    field: str,
) -> None:
    """The list, both streamed exports and the background export refuse it on the field,
    before anything streams, is queued or is audited as exported."""
    tenant, owner, _threads = await acme_with_chats(app, db)
    sent = RecordedTasks()
    monkeypatch.setattr(app.state.celery, "send_task", sent.record)
    for path in ("", "/export.jsonl", "/export.csv"):
        refused = await client.get(CONVERSATIONS + path, params=filters, headers=owner.headers)
        assert refused.status_code == 422, (path, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in refused.json()["errors"]] == [field], path
    body = {"format": "jsonl", "filters": filters}
    refused = await client.post(CONVERSATIONS + "/exports", json=body, headers=owner.headers)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == [f"filters.{field}"]
    assert await db.scalar(select(func.count()).select_from(ConversationExport)) == 0
    assert "conversations.exported" not in await audit_actions(db, tenant.id)
    assert sent.sent == []


async def test_a_moments_range_and_an_anonymous_visitors_own_id_are_filters(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    _tenant, owner, threads = await acme_with_chats(app, db)
    read = await client.get(f"{CONVERSATIONS}/{threads['returns']}", headers=owner.headers)
    at = datetime.fromisoformat(read.json()["last_activity"])
    moment = {"since": at.isoformat(), "until": (at + timedelta(microseconds=1)).isoformat()}
    assert await listed(client, owner, **moment) == [threads["returns"]]
    assert await listed(client, owner, end_user=ANONYMOUS) == [threads["anonymous"]]


async def _older_conversations(db: AsyncSession, tenant: Tenant, count: int) -> list[str]:
    """``count`` more of the tenant's conversations, each an hour older than the last,
    the first older than :func:`acme_with_chats`' threads."""
    shop = await db.scalar(
        select(Widget).where(Widget.tenant_id == tenant.id, Widget.name == "Shop")
    )
    assert shop is not None
    return [
        await conversation(db, shop, f"u:{n}", [f"question {n}"], hours_ago=4 + n)
        for n in range(count)
    ]


async def test_chats_of_the_dashboards_preview_are_not_conversations(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant, owner, threads = await acme_with_chats(app, db)
    shop = await db.scalar(
        select(Widget).where(Widget.tenant_id == tenant.id, Widget.name == "Shop")
    )
    assert shop is not None
    tried = await conversation(db, shop, "u:42", ["Can I return my draft?", "Sure."], preview=True)
    assert await listed(client, owner) == [
        threads["returns"],
        threads["anonymous"],
        threads["blog"],
    ]
    assert await listed(client, owner, q="draft") == []
    assert await listed(client, owner, end_user="u:42") == [threads["returns"]]
    read = await client.get(f"{CONVERSATIONS}/{tried}", headers=owner.headers)
    assert (read.status_code, read.json()["code"]) == (404, "conversation_not_found")


async def test_reading_a_transcript_is_audited_and_deleting_it_too(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant, owner, threads = await acme_with_chats(app, db)
    url = f"{CONVERSATIONS}/{threads['anonymous']}"
    read = await client.get(url, headers=owner.headers)
    assert read.status_code == 200, read.text
    transcript = read.json()
    assert [(i["type"], i["text"]) for i in transcript["items"]] == [
        ("user_message", "Do you ship to Norway?"),
        ("assistant_message", "We do."),
        ("user_message", "How long?"),
        ("assistant_message", "A week."),
    ]
    assert transcript["items"][1]["feedback"] == "negative"
    assert "conversation.read" in await audit_actions(db, tenant.id)

    theirs = await client.get(f"{CONVERSATIONS}/{threads['theirs']}", headers=owner.headers)
    assert (theirs.status_code, theirs.json()["code"]) == (404, "conversation_not_found")

    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.get(url, headers=owner.headers)).status_code == 404
    left = await db.scalar(
        select(func.count()).select_from(ChatItem).where(ChatItem.thread_id == threads["anonymous"])
    )
    assert left == 0
    assert "conversation.deleted" in await audit_actions(db, tenant.id)


async def test_a_transcript_is_read_a_page_of_items_at_a_time(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """A visitor may write a conversation of any length, and its transcript was one answer
    holding every item; now at most ``limit`` (1,000 by default) and the cursor of the
    next ones, each read audited."""
    tenant, owner, _threads = await acme_with_chats(app, db)
    shop = await db.scalar(
        select(Widget).where(Widget.tenant_id == tenant.id, Widget.name == "Shop")
    )
    assert shop is not None
    said = [f"message {n}" for n in range(5)]
    thread = await conversation(db, shop, "u:long", said)
    url = f"{CONVERSATIONS}/{thread}"

    read, after = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"after": after} if after else {})
        page = await client.get(url, params=params, headers=owner.headers)
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= 2
        read += [item["text"] for item in page.json()["items"]]
        after = page.json()["next"]
        if after is None:
            break
    assert read == said
    whole = (await client.get(url, headers=owner.headers)).json()
    assert ([item["text"] for item in whole["items"]], whole["next"]) == (said, None)
    assert (await audit_actions(db, tenant.id)).count("conversation.read") == 4

    for params in ({"after": "%%%"}, {"after": thread}, {"limit": 0}, {"limit": 1001}):
        refused = await client.get(url, params=params, headers=owner.headers)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == list(params)


async def test_editors_read_conversations_where_the_tenant_lets_them_viewers_never(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant, owner, threads = await acme_with_chats(app, db)
    editor = await login(app, db, await make_member(db, tenant, Role.editor))
    viewer = await login(app, db, await make_member(db, tenant, Role.viewer))
    settings = CONVERSATIONS + "/settings"
    shown = await client.get(settings, headers=owner.headers)
    assert shown.json() == {"editors_may_read": False}

    opened = await client.put(settings, json={"editors_may_read": True}, headers=owner.headers)
    assert opened.json() == {"editors_may_read": True}
    assert "conversations.settings_changed" in await audit_actions(db, tenant.id)
    everything = [threads["returns"], threads["anonymous"], threads["blog"]]
    assert await listed(client, editor) == everything
    read = await client.get(f"{CONVERSATIONS}/{threads['returns']}", headers=editor.headers)
    assert read.status_code == 200
    for path in ("", f"/{threads['returns']}", "/export.csv", "/settings"):
        refused = await client.get(CONVERSATIONS + path, headers=viewer.headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    them = await client.get("/api/v1/tenants/other/conversations", headers=editor.headers)
    assert them.status_code == 404, "still only their own tenant"

    # Making an editor now gives conversations:read: only a caller holding it may.
    editors = sorted(ROLE_SCOPES[Role.editor] | {Scope.members_write})
    manager = await client_token(app, db, tenant, editors)
    invite = {"email": "eve@example.test", "role": "editor"}
    invited = await client.post(
        "/api/v1/tenants/acme/invitations", json=invite, headers=manager.headers
    )
    assert (invited.status_code, invited.json()["code"]) == (403, "role_too_high")
    # Nor may it open conversations to editors.
    refused = await client.put(settings, json={"editors_may_read": True}, headers=manager.headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "scope_escalation")
    closed = await client.put(settings, json={"editors_may_read": False}, headers=manager.headers)
    assert closed.json() == {"editors_may_read": False}
    again = await client.get(CONVERSATIONS, headers=editor.headers)
    assert (again.status_code, again.json()["code"]) == (403, "insufficient_scope")
    assert await listed(client, owner) == everything, "owners always"
    invited = await client.post(
        "/api/v1/tenants/acme/invitations", json=invite, headers=manager.headers
    )
    assert invited.status_code == 201, "an editor reads nothing now"


@pytest.mark.parametrize("role", [Role.editor, Role.viewer])
async def test_only_owners_and_admins_read_conversations(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, role: Role
) -> None:
    tenant, _, threads = await acme_with_chats(app, db)
    member = await login(app, db, await make_member(db, tenant, role))
    for path in ("", f"/{threads['returns']}", "/export.jsonl", "/export.csv"):
        refused = await client.get(CONVERSATIONS + path, headers=member.headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    admin = await login(app, db, await make_member(db, tenant, Role.admin))
    assert (await client.get(CONVERSATIONS, headers=admin.headers)).status_code == 200


async def test_the_export_streams_every_match_a_page_at_a_time(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant, owner, threads = await acme_with_chats(app, db)
    widget = await db.scalar(select(Widget).where(Widget.tenant_id == tenant.id))
    assert widget is not None
    for n in range(450):  # more than two export pages
        await conversation(db, widget, f"u:{n}", [f"question {n}"], hours_ago=5)
    async with client.stream("GET", CONVERSATIONS + "/export.jsonl", headers=owner.headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) async for line in r.aiter_lines() if line]
    assert len(lines) == 453
    assert len({line["id"] for line in lines}) == 453
    assert threads["theirs"] not in {line["id"] for line in lines}
    first = lines[0]
    assert (first["id"], [i["text"] for i in first["items"]]) == (
        threads["returns"],
        ["Can I return my tent?", "Yes, within 30 days."],
    )
    only = await client.get(
        CONVERSATIONS + "/export.jsonl", params={"q": "Norway"}, headers=owner.headers
    )
    assert [json.loads(line)["id"] for line in only.text.splitlines()] == [threads["anonymous"]]
    paged = await client.get(
        CONVERSATIONS + "/export.jsonl", params={"limit": 2}, headers=owner.headers
    )
    assert paged.status_code == 422, "an export takes filters, and has every match"


async def test_an_export_goes_on_past_a_thread_that_changes_or_goes_while_it_runs(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export reads a page at a time; the last thread of a page getting a message or
    being deleted before the next page is read neither repeats threads nor ends the
    export early."""
    tenant, owner, threads = await acme_with_chats(app, db)
    older = await _older_conversations(db, tenant, 3)
    monkeypatch.setattr(service, "EXPORT_PAGE", 2)
    exported: list[str] = []
    keys, line = app.state.settings.keys(), ""
    parts = service.export_lines(app.state.sessionmaker, tenant.id, ConversationFilters(), keys)
    async for part in parts:
        line += part.text
        if not line.endswith("\n"):
            continue
        exported.append(json.loads(line)["id"])
        line = ""
        if len(exported) == 2:  # a page is out: its last thread gets a message
            moved = await db.get(ChatThread, threads["anonymous"])
            assert moved is not None
            moved.updated_at = utcnow()
            await db.flush()
        if len(exported) == 4:  # and the next page's last thread is deleted
            gone = await client.delete(f"{CONVERSATIONS}/{older[0]}", headers=owner.headers)
            assert gone.status_code == 204, gone.text
    assert exported == [
        threads["returns"],
        threads["anonymous"],
        threads["blog"],
        older[0],
        older[1],
        older[2],
    ]


async def test_staff_note_and_mark_a_conversation_reviewed(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant, owner, threads = await acme_with_chats(app, db)
    review = f"{CONVERSATIONS}/{threads['anonymous']}/review"
    noted = await client.patch(
        review, json={"note": "Shipping times unclear"}, headers=owner.headers
    )
    assert noted.status_code == 200, noted.text
    assert (noted.json()["note"], noted.json()["reviewed"]) == ("Shipping times unclear", False)
    marked = await client.patch(review, json={"reviewed": True}, headers=owner.headers)
    assert (marked.json()["note"], marked.json()["reviewed"]) == ("Shipping times unclear", True)

    transcript = (
        await client.get(f"{CONVERSATIONS}/{threads['anonymous']}", headers=owner.headers)
    ).json()
    assert transcript["review"]["note"] == "Shipping times unclear"
    assert transcript["reviewed"] is True
    assert await listed(client, owner, reviewed="true") == [threads["anonymous"]]
    assert await listed(client, owner, reviewed="false") == [threads["returns"], threads["blog"]]
    assert "conversation.reviewed" in await audit_actions(db, tenant.id)
    theirs = f"{CONVERSATIONS}/{threads['theirs']}/review"
    refused = await client.patch(theirs, json={"reviewed": True}, headers=owner.headers)
    assert (refused.status_code, refused.json()["code"]) == (404, "conversation_not_found")
    too_long = await client.patch(review, json={"note": "x" * 5001}, headers=owner.headers)
    assert too_long.status_code == 422
    assert [e["field"] for e in too_long.json()["errors"]] == ["note"]


def fact(thread: ChatThread, name: str, at: datetime | None = None, **data: Any) -> AnalyticsEvent:
    """A fact the chat runtime reported about ``thread`` (as the worker stores it)."""
    return AnalyticsEvent(
        tenant_id=thread.tenant_id,
        event_id="s_" + secrets.token_hex(16),
        widget_id=thread.widget_id,
        name=name,
        occurred_at=at or utcnow(),
        received_at=utcnow(),
        end_user_id=thread.end_user_id,
        thread_id=thread.id,
        data={"thread_id": thread.id, **data},
    )


async def test_each_conversation_has_its_answers_latency_and_tokens(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    _tenant, owner, threads = await acme_with_chats(app, db)
    answered = await db.get(ChatThread, threads["anonymous"])
    theirs = await db.get(ChatThread, threads["theirs"])
    assert answered is not None
    assert theirs is not None
    finished = "server.response.finished"
    db.add_all(
        [
            fact(
                answered,
                finished,
                first_token_ms=300,
                total_ms=900,
                input_tokens=10,
                output_tokens=4,
            ),
            fact(
                answered,
                finished,
                first_token_ms=500,
                total_ms=800,
                input_tokens=20,
                output_tokens=6,
            ),
            fact(answered, finished, total_ms=50),  # ended before a first word, no usage
            fact(theirs, finished, first_token_ms=9, total_ms=9, input_tokens=99, output_tokens=99),
        ]
    )
    await db.flush()

    page = await client.get(CONVERSATIONS, headers=owner.headers)
    rows = {row["id"]: row for row in page.json()["data"]}
    figures = ("responses", "first_token_p50_ms", "input_tokens", "output_tokens")
    assert [rows[threads["anonymous"]][f] for f in figures] == [3, 400.0, 30, 10]
    assert [rows[threads["returns"]][f] for f in figures] == [0, None, 0, 0]
    transcript = await client.get(f"{CONVERSATIONS}/{threads['anonymous']}", headers=owner.headers)
    assert [transcript.json()[f] for f in figures] == [3, 400.0, 30, 10]
    # The helper's messages were written an hour before these facts: no answer is theirs.
    assert [i["answer"] for i in transcript.json()["items"]] == [None] * 4
    export = await client.get(f"{CONVERSATIONS}/export.jsonl", headers=owner.headers)
    exported = {line["id"]: line for line in map(json.loads, export.text.splitlines())}
    assert exported[threads["anonymous"]]["first_token_p50_ms"] == 400.0
    assert threads["theirs"] not in exported


async def test_an_assistant_message_shows_the_answer_that_wrote_it(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant = await make_tenant(db, "acme")
    shop = await create_widget(db, CLI, tenant, name="Shop")
    owner = await login(app, db, await make_member(db, tenant, Role.owner))
    thread_id = await conversation(db, shop, "u:1", ["Hi", "Hello!", "Bye", "Goodbye!"])
    thread = await db.get(ChatThread, thread_id)
    assert thread is not None
    items = (await client.get(f"{CONVERSATIONS}/{thread_id}", headers=owner.headers)).json()
    hello, goodbye = (datetime.fromisoformat(i["created_at"]) for i in items["items"][1::2])
    finished = "server.response.finished"
    db.add_all(
        [  # each answer ends half a second after its message was created
            fact(
                thread, finished, hello + timedelta(seconds=0.5), first_token_ms=120, total_ms=700
            ),
            fact(
                thread,
                finished,
                goodbye + timedelta(seconds=0.5),
                first_token_ms=80,
                total_ms=600,
                input_tokens=5,
                output_tokens=2,
            ),
        ]
    )
    await db.flush()
    items = (await client.get(f"{CONVERSATIONS}/{thread_id}", headers=owner.headers)).json()
    answers = [i["answer"] for i in items["items"]]
    assert answers == [
        None,
        {"first_token_ms": 120, "total_ms": 700, "input_tokens": None, "output_tokens": None},
        None,
        {"first_token_ms": 80, "total_ms": 600, "input_tokens": 5, "output_tokens": 2},
    ]


async def test_the_list_finds_threads_with_errors_or_attachments(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    _tenant, owner, threads = await acme_with_chats(app, db)
    failed = await db.get(ChatThread, threads["anonymous"])
    stopped = await db.get(ChatThread, threads["blog"])
    theirs = await db.get(ChatThread, threads["theirs"])
    assert failed is not None
    assert stopped is not None
    assert theirs is not None
    for thread, error in ((failed, "APIError"), (stopped, "cancelled"), (theirs, "APIError")):
        db.add(
            AnalyticsEvent(
                tenant_id=thread.tenant_id,
                event_id="s_" + secrets.token_hex(16),
                widget_id=thread.widget_id,
                name="server.response.failed",
                occurred_at=utcnow(),
                received_at=utcnow(),
                end_user_id=thread.end_user_id,
                thread_id=thread.id,
                data={"thread_id": thread.id, "error": error},
            )
        )
    returns = await db.get(ChatThread, threads["returns"])
    assert returns is not None
    for thread in (returns, theirs):
        db.add(
            ChatAttachment(
                id="atc_" + secrets.token_hex(8),
                tenant_id=thread.tenant_id,
                widget_id=thread.widget_id,
                end_user_id=thread.end_user_id,
                thread_id=thread.id,
                mime_type="image/png",
                size=1234,
                uploaded_at=utcnow(),
                payload={"name": "tent.png"},
                payload_version=1,
            )
        )
    await db.flush()

    assert await listed(client, owner, has_error="true") == [threads["anonymous"]], "not a stop"
    assert await listed(client, owner, has_error="false") == [threads["returns"], threads["blog"]]
    assert await listed(client, owner, has_attachments="true") == [threads["returns"]]
    without = await listed(client, owner, has_attachments="false")
    assert without == [threads["anonymous"], threads["blog"]]
    both = await listed(client, owner, has_error="true", has_attachments="true")
    assert both == []
    exported = await client.get(
        CONVERSATIONS + "/export.csv", params={"has_error": "true"}, headers=owner.headers
    )
    assert {row["thread_id"] for row in csv.DictReader(io.StringIO(exported.text))} == {
        threads["anonymous"]
    }


async def test_the_csv_export_streams_every_message_one_row_each_audited(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant, owner, threads = await acme_with_chats(app, db)
    widget = await db.scalar(select(Widget).where(Widget.tenant_id == tenant.id))
    assert widget is not None
    for n in range(450):  # more than two export pages
        await conversation(db, widget, f"u:{n}", [f"question {n}", "answer, with a comma"])
    await conversation(db, widget, "u:formula", ['=HYPERLINK("http://x", "y")\nsecond line'])
    async with client.stream("GET", CONVERSATIONS + "/export.csv", headers=owner.headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert "conversations.csv" in r.headers["content-disposition"]
        text = "".join([chunk async for chunk in r.aiter_text()])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "thread_id",
        "widget_id",
        "end_user",
        "item_id",
        "created_at",
        "kind",
        "text",
    ]
    assert len(rows) == 2 + 4 + 1 + 900 + 1
    assert threads["theirs"] not in {row["thread_id"] for row in rows}
    assert ANONYMOUS not in text
    norway = [row for row in rows if row["thread_id"] == threads["anonymous"]]
    assert [(row["kind"], row["text"]) for row in norway] == [
        ("user_message", "Do you ship to Norway?"),
        ("assistant_message", "We do."),
        ("user_message", "How long?"),
        ("assistant_message", "A week."),
    ]
    assert norway[0]["end_user"].startswith("a:h_")
    assert norway[0]["widget_id"] == str(widget.id)
    assert "answer, with a comma" in {row["text"] for row in rows}
    [formula] = [row for row in rows if row["end_user"] == "u:formula"]
    assert formula["text"] == '\'=HYPERLINK("http://x", "y")\nsecond line'

    only = await client.get(
        CONVERSATIONS + "/export.csv", params={"q": "Norway"}, headers=owner.headers
    )
    assert {row["thread_id"] for row in csv.DictReader(io.StringIO(only.text))} == {
        threads["anonymous"]
    }
    await client.get(CONVERSATIONS + "/export.jsonl", headers=owner.headers)
    entries = (
        await db.scalars(
            select(AuditLogEntry).where(
                AuditLogEntry.tenant_id == tenant.id,
                AuditLogEntry.action == "conversations.exported",
            )
        )
    ).all()
    assert sorted((e.data["format"], str(e.data["filters"])) for e in entries) == [
        ("csv", "{'q': 'Norway'}"),
        ("csv", "{}"),
        ("jsonl", "{}"),
    ]
    assert {e.actor_type for e in entries} == {"user"}


async def test_the_search_means_the_same_on_both_databases(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """Whole words, any case, every word in one message, in the messages' text only (not
    the stored JSON around it); what the visitor types is words, never query syntax."""
    _tenant, owner, threads = await acme_with_chats(app, db)
    norway = [threads["anonymous"]]
    for q, found in [
        ("Norway", norway),
        ("NORWAY", norway),
        ("Norway?!", norway),
        ("ship norway", norway),
        ("Norw", []),
        ("Norway week", []),  # two messages of one thread: no message holds both
        ("input_text", []),
        ("content", []),
        ('"Norway" OR tent', []),
        ("Norway NEAR(ship)", []),
        ("!!", []),
        ("return tent", [threads["returns"]]),
    ]:
        assert await listed(client, owner, q=q) == found, q

    answer = await db.scalar(
        select(ChatItem).where(
            ChatItem.thread_id == threads["blog"], ChatItem.kind == "user_message"
        )
    )
    assert answer is not None
    answer.payload = {"type": "user_message", "content": [{"type": "input_text", "text": "Kayaks"}]}
    await db.flush()
    assert await listed(client, owner, q="kayaks") == [threads["blog"]], "edits are indexed"
    assert await listed(client, owner, q="blog") == []
    await db.delete(answer)
    await db.flush()
    assert await listed(client, owner, q="kayaks") == []


async def test_the_search_finds_the_words_of_addresses_numbers_and_names_on_both_databases(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """PostgreSQL's parser kept an email address, a URL, a file name, a version, a decimal
    and a hyphenated number whole, where the search looks for the words between their
    punctuation (as SQLite does): none of these was found there. A final sigma is a sigma
    in any case."""
    tenant, owner, _threads = await acme_with_chats(app, db)
    shop = await db.scalar(
        select(Widget).where(Widget.tenant_id == tenant.id, Widget.name == "Shop")
    )
    assert shop is not None
    said = {
        "email": "Mail me at john.doe@example.com please",
        "order": "My order ORD-12345 is late",
        "file": "See invoice_2024.pdf, it costs 3.14 more in app 1.2.3",
        "url": "Look at https://shop.example.com/orders/123 now",
        "greek": "ΟΔΟΣ σοφίας",
    }
    made = {name: await conversation(db, shop, f"u:{name}", [text]) for name, text in said.items()}
    for q, found in [
        ("john.doe@example.com", ["email"]),
        ("john", ["email"]),
        ("example.com", ["email", "url"]),
        ("john.doe@example.org", []),
        ("ORD-12345", ["order"]),
        ("12345", ["order"]),
        ("invoice_2024.pdf", ["file"]),
        ("invoice", ["file"]),
        ("3.14", ["file"]),
        ("1.2.3", ["file"]),
        ("https://shop.example.com/orders/123", ["url"]),
        ("orders", ["url"]),
        ("οδος", ["greek"]),
        ("ΣΟΦΊΑΣ", ["greek"]),
        ("σοφίας", ["greek"]),
    ]:
        assert sorted(await listed(client, owner, q=q)) == sorted(made[n] for n in found), q


async def test_the_search_finds_words_written_with_combining_marks(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    """Hindi's vowel signs and viramas and Arabic's vowel marks are combining marks: the
    search cut the words it looked for at them, and PostgreSQL, whose index keeps such a word
    whole, found nothing."""
    tenant, owner, _threads = await acme_with_chats(app, db)
    shop = await db.scalar(
        select(Widget).where(Widget.tenant_id == tenant.id, Widget.name == "Shop")
    )
    assert shop is not None
    hindi = await conversation(db, shop, "u:8", ["नमस्ते दुनिया", "स्वागत है"])
    arabic = await conversation(db, shop, "u:9", ["كَتَبَ الوَلَدُ", "شُكْرًا"])
    for q, found in [
        ("नमस्ते", [hindi]),
        ("दुनिया नमस्ते", [hindi]),
        ("स्वागत", [hindi]),
        ("كَتَبَ", [arabic]),
        ("شُكْرًا", [arabic]),
    ]:
        assert await listed(client, owner, q=q) == found, q


async def test_the_apps_role_searches_through_the_index_and_its_tenants_messages_only(
    app: FastAPI, db: AsyncSession, database_url: str
) -> None:
    """Row-level security keeps PostgreSQL from using ``ix_chat_items_search`` on
    ``chat_items`` itself (``@@`` is not leakproof: the planner parsed every message of the
    tenant instead), so the search reads the view ``chat_item_words``, which repeats the
    policy's condition."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite searches its FTS5 table")
    tenant, _owner, threads = await acme_with_chats(app, db)
    other = await db.scalar(select(Tenant).where(Tenant.slug == "other"))
    assert other is not None
    await conversation(
        db, await create_widget(db, CLI, tenant, name="Busy"), "u:1", ["filler"] * 2_000
    )
    await db.execute(text("ANALYZE chat_items"))  # as autovacuum would: 2,000 messages
    search = select(ChatThread.id).where(
        ChatThread.id.in_(repository._matching_threads(db, "return"))
    )
    async with session_scope(app.state.sessionmaker) as session:
        await rls.set_tenant(session, tenant.id)
        sql = search.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        plan = "\n".join((await session.execute(text(f"EXPLAIN {sql}"))).scalars())
        assert "Bitmap Index Scan on ix_chat_items_search" in plan, plan
        assert (await session.execute(search)).scalars().all() == [threads["returns"]]
        await rls.set_tenant(session, other.id)
        assert (await session.execute(search)).scalars().all() == [threads["theirs"]]


class RefusingStorage(LocalDiskStorage):
    """A blob storage that refuses every file with ``error``."""

    def __init__(self, root: Path, error: Exception) -> None:
        super().__init__(root)
        self.error = error

    async def put_file(self, key: str, file: BinaryIO) -> None:
        raise self.error


async def test_a_tenant_has_at_most_three_exports_being_written(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each export reads every conversation it matches: a script asking for thousands queued
    thousands. Another waits until one is written (or failed); nothing of it is kept,
    queued or audited."""
    tenant, owner, _threads = await acme_with_chats(app, db)
    sent = RecordedTasks()
    monkeypatch.setattr(app.state.celery, "send_task", sent.record)

    async def ask() -> httpx2.Response:
        body = {"format": "jsonl"}
        return await client.post(CONVERSATIONS + "/exports", json=body, headers=owner.headers)

    asked = [await ask() for _ in range(exports.MAX_PENDING)]
    assert [r.status_code for r in asked] == [202] * exports.MAX_PENDING
    refused = await ask()
    assert_problem(refused, 409, "too_many_exports")
    assert await db.scalar(select(func.count()).select_from(ConversationExport)) == 3
    assert (await audit_actions(db, tenant.id)).count("conversations.exported") == 3
    assert len(sent.sent) == 3

    first = await db.get(ConversationExport, uuid.UUID(asked[0].json()["id"]))
    assert first is not None
    first.status = ExportStatus.failed
    await db.flush()
    assert (await ask()).status_code == 202


async def test_an_export_that_cannot_be_written_shows_failed_a_passing_fault_pending(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """(The worker's side runs here; tests/conversations/test_exports.py runs a real one.)"""
    tenant, owner, _threads = await acme_with_chats(app, db)
    monkeypatch.setattr(app.state.celery, "send_task", RecordedTasks().record)
    for error, status in ((ValueError("refused"), "failed"), (OSError("busy"), "pending")):
        requested = await client.post(
            CONVERSATIONS + "/exports", json={"format": "csv"}, headers=owner.headers
        )
        assert requested.status_code == 202, requested.text
        export_id = requested.json()["id"]
        storage = RefusingStorage(tmp_path, error)
        with pytest.raises(type(error)):
            await exports.write(
                app.state.sessionmaker,
                storage,
                app.state.settings.keys(),
                tenant.id,
                uuid.UUID(export_id),
            )
        shown = await client.get(f"{CONVERSATIONS}/exports/{export_id}", headers=owner.headers)
        assert (shown.json()["status"], shown.json()["download_url"]) == (status, None)


async def test_an_export_whose_stored_filters_are_refused_now_shows_failed(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filters stored with an export asked for before a rule refused them (a range ending
    where it starts, a pseudonym as end user) raised before the worker's try: the export
    stayed pending until it expired, a day later, holding one of the tenant's 3 slots."""
    tenant, owner, _threads = await acme_with_chats(app, db)
    monkeypatch.setattr(app.state.celery, "send_task", RecordedTasks().record)
    requested = await client.post(
        CONVERSATIONS + "/exports", json={"format": "csv"}, headers=owner.headers
    )
    assert requested.status_code == 202, requested.text
    export_id = uuid.UUID(requested.json()["id"])
    export = await db.get(ConversationExport, export_id)
    assert export is not None
    export.filters = {"since": HOUR_AGO, "until": HOUR_AGO}
    await db.flush()
    storage = LocalDiskStorage(Path(app.state.settings.data_dir) / "refused-filters")
    with pytest.raises(ValueError, match="must be after since"):
        await exports.write(
            app.state.sessionmaker, storage, app.state.settings.keys(), tenant.id, export_id
        )
    shown = await client.get(f"{CONVERSATIONS}/exports/{export_id}", headers=owner.headers)
    assert (shown.json()["status"], shown.json()["download_url"]) == ("failed", None)


async def test_an_export_is_deleted_with_its_file_a_day_after_it_was_asked_for(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """An export's transcripts must not outlive the conversations' retention or an end
    user's erasure: the hourly purge deletes an export kept for ``exports.KEPT`` (its row,
    and its file after the commit) and leaves younger ones; until then it shows when."""
    tenant, owner, _threads = await acme_with_chats(app, db)
    recorded = RecordedTasks()
    monkeypatch.setattr(app.state.celery, "send_task", recorded.record)
    storage = LocalDiskStorage(tmp_path)
    written = []
    for _ in range(2):
        requested = await client.post(
            CONVERSATIONS + "/exports", json={"format": "jsonl"}, headers=owner.headers
        )
        assert requested.status_code == 202, requested.text
        export_id = uuid.UUID(requested.json()["id"])
        keys = app.state.settings.keys()
        assert await exports.write(app.state.sessionmaker, storage, keys, tenant.id, export_id)
        written.append(await db.get(ConversationExport, export_id))
    old, young = written
    assert old is not None
    assert young is not None
    old.created_at = utcnow() - exports.KEPT - timedelta(minutes=1)
    await db.flush()
    shown = (await client.get(f"{CONVERSATIONS}/exports/{old.id}", headers=owner.headers)).json()
    assert datetime.fromisoformat(shown["kept_until"]) == old.created_at + exports.KEPT
    assert shown["download_url"] is None, "its time is over, though the purge has not run yet"
    recorded.take("kithost.conversations.write_export")

    assert await exports.purge_expired(app.state.sessionmaker, utcnow()) == 1

    gone = await client.get(f"{CONVERSATIONS}/exports/{old.id}", headers=owner.headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "export_not_found")
    kept = await client.get(f"{CONVERSATIONS}/exports/{young.id}", headers=owner.headers)
    assert kept.json()["download_url"] is not None
    [(tenant_id, names)] = recorded.take("kithost.chat.delete_blobs")
    assert (tenant_id, names) == (str(tenant.id), [exports.blob_key(old)])
    assert await storage.get(names[0]) is not None  # until the worker runs
    await storage.delete(names)  # as kithost.chat.delete_blobs does
    assert await storage.get(names[0]) is None
    assert await storage.get(exports.blob_key(young)) is not None


async def test_the_audit_log_names_an_exported_anonymous_end_user_by_pseudonym(
    client: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """members:read reads the log, and a device id mints sessions: an export filtered by an
    anonymous end user is recorded, and shown, with the ``a:h_…`` the exports show; ``u:…``
    as given."""
    tenant, owner, threads = await acme_with_chats(app, db)
    monkeypatch.setattr(app.state.celery, "send_task", RecordedTasks().record)
    exported = await client.get(
        CONVERSATIONS + "/export.csv", params={"end_user": ANONYMOUS}, headers=owner.headers
    )
    [row, *_] = csv.DictReader(io.StringIO(exported.text))
    assert row["thread_id"] == threads["anonymous"]
    await client.get(
        CONVERSATIONS + "/export.jsonl", params={"end_user": "u:42"}, headers=owner.headers
    )
    requested = await client.post(
        CONVERSATIONS + "/exports",
        json={"format": "jsonl", "filters": {"end_user": ANONYMOUS}},
        headers=owner.headers,
    )
    assert requested.status_code == 202, requested.text
    entries = await db.scalars(
        select(AuditLogEntry).where(
            AuditLogEntry.tenant_id == tenant.id, AuditLogEntry.action == "conversations.exported"
        )
    )
    assert sorted(e.data["filters"]["end_user"] for e in entries) == sorted(
        [row["end_user"], row["end_user"], "u:42"]
    )
    assert row["end_user"].startswith("a:h_")
    export = f"{CONVERSATIONS}/exports/{requested.json()['id']}"
    assert requested.json()["filters"] == {"end_user": row["end_user"]}
    shown = await client.get(export, headers=owner.headers)
    assert shown.json()["filters"] == {"end_user": row["end_user"]}
    assert ANONYMOUS not in shown.text
