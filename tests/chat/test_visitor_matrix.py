"""The visitor routes against callers of another tenant: every request that names tenant B's
widget, thread, item or attachment while holding only tenant A's credentials is refused with
its documented problem, and tenant B's own visitor is served the same requests.

Principals (all of tenant A): A's visitor token, A's end user (the *same* end-user id as
B's visitor, so only the tenant tells them apart), A's signed attachment links, and a
preview key of A. Targets: B's widget (``/v1/chatkit``, ``/v1/embed/…/session`` and
``/config``), B's thread and its items, B's attachment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Widget
from kithost.models.base import utcnow
from kithost.sessions import tokens
from kithost.widgets import preview
from tests.chat.helpers import (
    PNG,
    Visitor,
    assert_problem,
    attachment_widget,
    create,
    path_of,
    thread_of,
    upload,
    visitor,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.visitor.helpers import ORIGIN
from tests.widgets.previews import maker

MESSAGE = {"content": [{"type": "input_text", "text": "hi"}], "inference_options": {}}
DASHBOARD = "https://dashboard.example.com"


@dataclass(frozen=True)
class Theirs:
    """What tenant B's visitor made: a thread with items and an uploaded attachment."""

    visitor: Visitor
    thread_id: str
    item_ids: list[str]
    attachment: dict[str, Any]


async def theirs(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, widget: Widget
) -> Theirs:
    bea = await visitor(http, app, db, widget)
    thread_id = thread_of(await bea.send("Tenant B's secret"))
    items = await bea.call("items.list", thread_id=thread_id, order="asc")
    attachment = await create(bea)
    uploaded = await upload(http, attachment)
    assert uploaded.status_code == 200, uploaded.text
    return Theirs(bea, thread_id, [i["id"] for i in items["data"]], uploaded.json())


def protocol_calls(target: Theirs) -> list[tuple[str, dict[str, Any]]]:
    """Every ChatKit operation, each naming B's rows."""
    thread = {"thread_id": target.thread_id}
    item = target.item_ids[-1]
    return [
        ("threads.list", {}),
        ("threads.get_by_id", thread),
        ("items.list", thread),
        ("threads.update", {**thread, "title": "mine"}),
        ("items.feedback", {**thread, "item_ids": target.item_ids, "kind": "positive"}),
        ("threads.retry_after_item", {**thread, "item_id": item}),
        ("threads.add_user_message", {**thread, "input": {**MESSAGE, "attachments": []}}),
        ("threads.create", {"input": {**MESSAGE, "attachments": [target.attachment["id"]]}}),
        ("attachments.create", {"name": "a.png", "size": len(PNG), "mime_type": "image/png"}),
        ("attachments.delete", {"attachment_id": target.attachment["id"]}),
        ("threads.delete", thread),
    ]


async def test_tenant_a_credentials_reach_nothing_of_tenant_b(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    mine = await attachment_widget(db, app, fake_openai)
    other = await attachment_widget(db, app, fake_openai)
    assert mine.tenant_id != other.tenant_id
    target = await theirs(http, app, db, other)
    alice = await visitor(http, app, db, mine)
    assert alice.end_user == target.visitor.end_user
    own_attachment = await create(alice)
    own_upload = own_attachment["upload_descriptor"]["url"]
    b_preview = path_of(target.attachment["preview_url"])
    on_b = Visitor(http, other.public_key, alice.token, alice.end_user)

    expected_not_found = {
        "threads.create": "attachment_not_found",
        "attachments.delete": "attachment_not_found",
    }
    mismatches: list[str] = []

    def check(case: str, response: httpx2.Response, status: int, code: str) -> None:
        body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
        if (response.status_code, body.get("code")) != (status, code):
            mismatches.append(f"{case}: {response.status_code} {response.text[:200]}")

    for op, params in protocol_calls(target):
        # Widget A's visitor token on widget B's URL.
        check(f"A's token on B: {op}", await on_b.post(op, **params), 401, "invalid_session_token")
        # End user A, on A's widget, naming B's thread, items and attachment.
        if op in {"threads.list", "attachments.create"}:
            continue
        code = expected_not_found.get(op, "thread_not_found")
        check(f"A's end user on B's rows: {op}", await alice.post(op, **params), 404, code)
    listed = await alice.call("threads.list")
    assert listed["data"] == [], "end user A lists B's thread"

    # A's refreshed session on B's widget, and A's signed links pointed at B's rows.
    refresh = await http.post(
        f"/v1/embed/{other.public_key}/session",
        json={"current": alice.token},
        headers={"Origin": ORIGIN},
    )
    check("A's token refreshed on B", refresh, 401, "invalid_session_token")
    links = {
        "A's upload link on B's attachment": own_upload.replace(
            own_attachment["id"], target.attachment["id"]
        ),
        "A's upload link under B's key": own_upload.replace(mine.public_key, other.public_key),
        "B's preview link under A's key": b_preview.replace(other.public_key, mine.public_key),
    }
    for case, link in links.items():
        method = "POST" if "upload" in case else "GET"
        files = {"file": ("a.png", PNG, "image/png")} if method == "POST" else None
        response = await http.request(method, path_of(link), files=files)
        check(case, response, 401, "invalid_attachment_token")
    assert not mismatches, "\n".join(mismatches)

    # Tenant B's own visitor is still served all of it.
    thread = await target.visitor.call("threads.get_by_id", thread_id=target.thread_id)
    assert thread["title"] == "Tenant B's secret"
    assert (await http.get(b_preview)).content == PNG


async def test_a_preview_key_of_tenant_a_opens_nothing_of_tenant_b(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    mine = await attachment_widget(db, app, fake_openai)
    other = await attachment_widget(db, app, fake_openai)
    settings = app.state.settings
    expires, by = utcnow() + timedelta(minutes=5), await maker(db)
    own_key = preview.issue(
        settings, preview.Preview(mine.tenant_id, mine.id, DASHBOARD, expires, by)
    )
    b_key = preview.issue(
        settings, preview.Preview(other.tenant_id, other.id, DASHBOARD, expires, by)
    )
    # Signed by Kithost, but naming tenant A and B's widget: the tenant scopes the lookup.
    crossed = preview.issue(
        settings, preview.Preview(mine.tenant_id, other.id, DASHBOARD, expires, by)
    )
    origin = {"Origin": DASHBOARD}
    assert (await http.get(f"/v1/embed/{own_key}/config", headers=origin)).status_code == 200
    assert (await http.get(f"/v1/embed/{b_key}/config", headers=origin)).status_code == 200

    for response in (
        await http.get(f"/v1/embed/{crossed}/config", headers=origin),
        await http.post(
            f"/v1/embed/{crossed}/session", json={"device_id": "anon_" + "d" * 24}, headers=origin
        ),
        await http.post(
            f"/v1/chatkit/{crossed}", json={"type": "threads.list", "params": {}}, headers=origin
        ),
    ):
        assert_problem(response, 404, "widget_not_found")
    assert (await http.get(f"/w/{crossed}")).status_code == 404

    # A session minted on A's preview key, used on B's preview and on B's own key.
    claims = tokens.SessionClaims(
        end_user_id="a:anon_" + "d" * 24,
        origin=DASHBOARD,
        tenant_id=str(mine.tenant_id),
        widget_id=str(mine.id),
    )
    minted = await tokens.issue(
        db, settings, app.state.secret_box, public_key=own_key, claims=claims
    )
    on_own = Visitor(http, own_key, minted.token, claims.end_user_id, DASHBOARD)
    assert (await on_own.call("threads.list"))["data"] == []
    on_b_preview = Visitor(http, b_key, minted.token, claims.end_user_id, DASHBOARD)
    assert_problem(await on_b_preview.post("threads.list"), 401, "invalid_session_token")
    refresh = await http.post(
        f"/v1/embed/{b_key}/session", json={"current": minted.token}, headers=origin
    )
    assert_problem(refresh, 401, "invalid_session_token")
    on_b = Visitor(http, other.public_key, minted.token, claims.end_user_id, ORIGIN)
    assert_problem(await on_b.post("threads.list"), 401, "invalid_session_token")
