"""The Agent Builder exit as an attacker sends it: an export whose reading would cost far
more than its size (a value named again and again, an f-string of many fields) is refused
with 422 on ``code``, a note met twice is listed once, and another tenant's widget is 404
to the import and the conversion alike."""

from __future__ import annotations

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Role
from tests.factories import login, make_member, make_tenant
from tests.widgets.helpers import WIDGETS, Acme, create, url


async def post_import(
    client: httpx2.AsyncClient, acme: Acme, code: str, *, dry_run: bool = False
) -> httpx2.Response:
    widget = url(await create(client, acme))
    params = {"dry_run": "true"} if dry_run else {}
    return await client.post(
        widget + "/agent-import", json={"code": code}, params=params, headers=acme.matching('"1"')
    )


def refused(response: httpx2.Response, code: str) -> None:
    assert response.status_code == 422, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], [(e["field"], e["type"]) for e in body["errors"]]) == (
        code,
        [("code", code)],
    )


async def test_a_value_named_by_many_tools_is_read_within_a_bound(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    ids = "[" + ", ".join("'x'" for _ in range(1000)) + "]"
    uses = ",\n".join("    FileSearchTool(vector_store_ids=IDS)" for _ in range(60))
    code = f"IDS = {ids}\na = Agent(name='A', tools=[\n{uses}\n])\n"
    refused(await post_import(client, acme, code, dry_run=True), "export_too_complex")


async def test_an_f_string_of_many_fields_is_refused_before_it_is_parsed(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    code = "a = Agent(name='A')\nx = f'" + "{a}" * 10_001 + "'\n"
    refused(await post_import(client, acme, code, dry_run=True), "export_too_complex")


async def test_a_tool_named_twice_is_listed_once(client: httpx2.AsyncClient, acme: Acme) -> None:
    code = (
        "@function_tool\ndef refund(order: str) -> str:\n    return order\n\n"
        "a = Agent(name='A', tools=[refund, refund])\n"
    )
    response = await post_import(client, acme, code, dry_run=True)
    assert response.status_code == 200, response.text
    assert [(s["line"], s["what"]) for s in response.json()["not_carried"]] == [
        (2, "function tool refund")
    ]


async def test_another_tenants_widget_is_not_found(
    client: httpx2.AsyncClient, acme: Acme, app: FastAPI, db: AsyncSession
) -> None:
    other = await make_tenant(db)
    owner = await make_member(db, other, Role.owner)
    headers = (await login(app, db, owner)).headers
    made = await client.post(
        f"/api/v1/tenants/{other.slug}/widgets", json={"name": "x"}, headers=headers
    )
    assert made.status_code == 201, made.text
    theirs = f"{WIDGETS}/{made.json()['id']}"
    for path, params in (
        ("/agent-import", {}),
        ("/agent-import", {"dry_run": "true"}),
        ("/convert", {}),
    ):
        response = await client.post(
            theirs + path, json={"code": "a = Agent()"}, params=params, headers=acme.matching('"1"')
        )
        assert (response.status_code, response.json()["code"]) == (404, "widget_not_found")
    shown = await client.get(
        f"/api/v1/tenants/{other.slug}/widgets/{made.json()['id']}", headers=headers
    )
    assert shown.json()["revision"] == 1
