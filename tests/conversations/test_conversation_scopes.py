"""Reading conversations is not leave to change them: reviewing and deleting one needs
``conversations:write`` (owners and admins; API clients granted it), which neither a client
holding ``conversations:read`` nor an editor the tenant lets read conversations has."""

from __future__ import annotations

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.scopes import Scope
from kithost.models import Role
from tests.conversations.helpers import CONVERSATIONS, acme_with_chats, listed
from tests.factories import Credentials, client_token, login, make_member


async def test_reviewing_and_deleting_need_conversations_write(
    client: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    tenant, owner, threads = await acme_with_chats(app, db)
    opened = await client.put(
        CONVERSATIONS + "/settings", json={"editors_may_read": True}, headers=owner.headers
    )
    assert opened.status_code == 200, opened.text
    editor = await login(app, db, await make_member(db, tenant, Role.editor))
    reader = await client_token(app, db, tenant, [Scope.conversations_read])
    thread = threads["returns"]

    async def refused(caller: Credentials) -> None:
        for method, path, body in (
            ("PATCH", f"/{thread}/review", {"reviewed": True}),
            ("DELETE", f"/{thread}", None),
        ):
            answer = await client.request(
                method, CONVERSATIONS + path, json=body, headers=caller.headers
            )
            assert (answer.status_code, answer.json()["code"]) == (403, "insufficient_scope")
        read = await client.get(f"{CONVERSATIONS}/{thread}", headers=caller.headers)
        assert read.status_code == 200, "reading still works"

    await refused(editor)
    await refused(reader)
    transcript = await client.get(f"{CONVERSATIONS}/{thread}", headers=owner.headers)
    assert transcript.json()["reviewed"] is False, "nothing changed"

    writer = await client_token(
        app, db, tenant, [Scope.conversations_read, Scope.conversations_write]
    )
    reviewed = await client.patch(
        f"{CONVERSATIONS}/{thread}/review", json={"reviewed": True}, headers=writer.headers
    )
    assert reviewed.json()["reviewed"] is True
    admin = await login(app, db, await make_member(db, tenant, Role.admin))
    deleted = await client.delete(f"{CONVERSATIONS}/{thread}", headers=admin.headers)
    assert deleted.status_code == 204, deleted.text
    assert thread not in await listed(client, owner)
