"""Keys no widget can have: every visitor route answers them as it answers an unknown key,
without asking the database (a lookup a key, and a key of any length, is a cost anyone can
make the server pay)."""

from __future__ import annotations

import httpx2
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.kit.tokens import random_token
from kithost.visitor.service import is_public_key
from tests.visitor.helpers import ORIGIN, make_widget

MALFORMED = [
    "pk_" + "A" * 60_000,  # what got through the HTTP parser, and into the cache
    "pk_nope",
    "pk_" + "A" * 31 + ".",  # right length, a character base64url has not
    "pk_" + "A" * 33,
    "PK_" + "A" * 32,
    "A" * 35,
]
ROUTES: list[tuple[str, str, dict[str, object] | None]] = [
    # method, path, body (JSON) of each visitor route that takes a key
    ("GET", "/v1/embed/{}/config", None),
    ("OPTIONS", "/v1/embed/{}/config", None),
    ("GET", "/embed/{}.js", None),
    ("GET", "/w/{}", None),
    ("POST", "/v1/embed/{}/session", {"device_id": "anon_" + "d" * 24}),
    ("POST", "/v1/embed/{}/events", {"events": []}),
    ("POST", "/v1/chatkit/{}", {"type": "threads.list", "params": {}}),
]
VARYING = {"date", "x-request-id", "content-length"}


def answer(response: httpx2.Response) -> tuple[int, dict[str, str], object]:
    """The response as a client tells it from another's: a problem's ``instance`` (the path:
    the key) and ``request_id`` aside."""
    headers = {k: v for k, v in response.headers.items() if k not in VARYING}
    if headers["content-type"] != "application/problem+json":
        return response.status_code, headers, response.content
    return response.status_code, headers, {**response.json(), "instance": None, "request_id": None}


async def test_widget_keys_have_the_shape_of_the_keys_widgets_get(db: AsyncSession) -> None:
    widgets = [await make_widget(db, config=None) for _ in range(20)]
    assert all(is_public_key(w.public_key) for w in widgets)
    assert not any(is_public_key(key) for key in MALFORMED)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_a_key_no_widget_can_have_is_an_unknown_key_found_without_a_query(
    client: httpx2.AsyncClient,
    connection: AsyncConnection,
    method: str,
    path: str,
    body: object,
) -> None:
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}

    async def ask(key: str) -> httpx2.Response:
        return await client.request(method, path.format(key), json=body, headers=headers)

    unknown = await ask(random_token("pk_"))  # the shape of a key: looked up
    assert unknown.status_code == 404
    statements: list[str] = []

    def record(_conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", record)
    try:
        answers = [await ask(key) for key in MALFORMED]
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", record)
    assert statements == []
    for malformed in answers:
        assert answer(malformed) == answer(unknown)
