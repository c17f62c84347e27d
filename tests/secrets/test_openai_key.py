"""A tenant's OpenAI API key over REST: write-only, stored encrypted, shown as its last
four characters, removable, and never written to the audit log."""

from __future__ import annotations

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Role, Tenant
from kithost.secrets.service import openai_key_to_use
from tests.factories import Credentials, login, make_member
from tests.secrets.helpers import assert_never_logged, audit_entries

URL = "/api/v1/tenants/acme/openai-key"
KEY = "sk-proj-" + "Ab3_" * 10 + "wxyz"
NEW_KEY = "sk-proj-" + "Zz9-" * 10 + "9876"
UNSET = {"configured": False, "last4": None}


async def test_the_key_is_write_only_and_stored_encrypted(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, editor: Credentials
) -> None:
    viewer = await login(app, db, await make_member(db, acme, Role.viewer))
    assert (await client.get(URL, headers=viewer.headers)).json() == UNSET

    put = await client.put(URL, json={"api_key": KEY}, headers=editor.headers)
    assert (put.status_code, put.json()) == (200, {"configured": True, "last4": "wxyz"})
    read = await client.get(URL, headers=viewer.headers)
    assert read.json() == put.json()
    assert KEY not in put.text + read.text

    await db.refresh(acme)
    first_ciphertext = acme.openai_api_key
    assert first_ciphertext is not None
    assert KEY[:-4] not in first_ciphertext
    box = app.state.secret_box
    assert box.decrypt(first_ciphertext) == KEY
    assert openai_key_to_use(app.state.settings, box, acme.openai_api_key) == KEY

    replaced = await client.put(URL, json={"api_key": NEW_KEY}, headers=editor.headers)
    assert replaced.json() == {"configured": True, "last4": "9876"}
    await db.refresh(acme)
    assert openai_key_to_use(app.state.settings, box, acme.openai_api_key) == NEW_KEY

    entries = await audit_entries(db, acme.id)
    assert [e.data for e in entries if e.action == "tenant.openai_key_set"] == [
        {"before": UNSET, "after": {"configured": True, "last4": "wxyz"}},
        {"before": {"last4": "wxyz"}, "after": {"last4": "9876"}},
    ]
    assert_never_logged(entries, KEY, NEW_KEY, first_ciphertext, acme.openai_api_key)


@pytest.mark.parametrize(
    "body",
    [
        {"api_key": "sk-" + "a" * 16},
        {"api_key": "sk-" + "a" * 298},
        {"api_key": "sk-proj-abc def-0123456789"},
        {"api_key": "sk-proj-0123456789abcdef\n"},
        {"api_key": "sk-proj-0123456789abcdéf"},
        {"api_key": 12345678901234567890123},
        {},
    ],
)
async def test_malformed_keys_are_refused(
    client: httpx2.AsyncClient,
    db: AsyncSession,
    acme: Tenant,
    editor: Credentials,
    body: dict[str, object],
) -> None:
    refused = await client.put(URL, json=body, headers=editor.headers)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["api_key"]
    if isinstance(body.get("api_key"), str):
        assert str(body["api_key"]) not in refused.text
    await db.refresh(acme)
    assert (acme.openai_api_key, acme.openai_api_key_last4) == (None, None)


async def test_the_shortest_and_longest_keys_are_accepted(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, editor: Credentials
) -> None:
    for key in ("sk-" + "a" * 17, "sk-" + "~" * 297):
        response = await client.put(URL, json={"api_key": key}, headers=editor.headers)
        assert response.status_code == 200, response.text
        await db.refresh(acme)
        assert (
            openai_key_to_use(app.state.settings, app.state.secret_box, acme.openai_api_key) == key
        )


async def test_removing_the_key(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, acme: Tenant, editor: Credentials
) -> None:
    await client.put(URL, json={"api_key": KEY}, headers=editor.headers)
    removed = await client.delete(URL, headers=editor.headers)
    assert removed.status_code == 204
    assert (await client.get(URL, headers=editor.headers)).json() == UNSET
    await db.refresh(acme)
    assert (acme.openai_api_key, acme.openai_api_key_last4) == (None, None)

    again = await client.delete(URL, headers=editor.headers)
    assert again.status_code == 204
    entries = await audit_entries(db, acme.id)
    assert [e.data for e in entries if e.action == "tenant.openai_key_removed"] == [
        {"before": {"configured": True, "last4": "wxyz"}, "after": UNSET}
    ]
    assert_never_logged(entries, KEY)
