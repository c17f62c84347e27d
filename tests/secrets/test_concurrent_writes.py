"""A widget's secrets written by several requests at once (a double click, a script): each
is answered, 2xx or 412 ``precondition_failed`` (another write of the widget committed
after it read the widget), never a 500, and what is stored is what one of them wrote."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx2
import pytest

from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.models import Widget
from kithost.settings import Settings
from kithost.widgets.service import create_widget
from tests.factories import Credentials, client_token
from tests.races import RacingApp, at_once, racing_app

AT_ONCE = 8


class Raced:
    def __init__(self, racing: RacingApp, client: httpx2.AsyncClient) -> None:
        self.racing, self.client = racing, client
        self.widget_id = uuid.uuid4()
        self.url = ""
        self.editor = Credentials({})

    async def arrange(self) -> None:
        async with self.racing.arranging() as session:
            tenant = await self.racing.tenant(session)
            widget = await create_widget(session, CLI, tenant, name="Raced")
            scopes = [Scope.widgets_read, Scope.widgets_write, Scope.sessions_mint]
            self.editor = await client_token(self.racing.app, session, tenant, scopes)
        await self.racing.warm(AT_ONCE)
        self.widget_id = widget.id
        self.url = f"/api/v1/tenants/{tenant.slug}/widgets/{widget.id}"

    async def at_once(
        self, method: str, path: str, json: dict[str, str] | None = None
    ) -> list[httpx2.Response]:
        async def one(_: int) -> httpx2.Response:
            url = f"{self.url}/{path}"
            return await self.client.request(method, url, json=json, headers=self.editor.headers)

        return await at_once(AT_ONCE, one)

    async def stored(self) -> Widget:
        async with self.racing.arranging() as session:
            return await session.get_one(Widget, self.widget_id)

    def decrypt(self, value: str | None) -> str:
        assert value is not None
        decrypted: str = self.racing.app.state.secret_box.decrypt(value)
        return decrypted


@pytest.fixture
async def raced(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Raced]:
    async with racing_app(settings, monkeypatch) as racing:
        raced = Raced(racing, racing.client)
        await raced.arrange()
        yield raced


def answered(responses: list[httpx2.Response], success: int) -> list[httpx2.Response]:
    """The successful ones among ``responses``, which are all ``success`` or 412 problems."""
    for response in responses:
        if response.status_code != success:
            assert response.status_code == 412, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "precondition_failed"
    done = [r for r in responses if r.status_code == success]
    assert done, "one of them changes the widget"
    return done


async def test_identity_secrets_rotated_at_once(raced: Raced) -> None:
    done = answered(await raced.at_once("POST", "identity-secret"), 200)
    stored = raced.decrypt((await raced.stored()).identity_secret)
    assert stored in {r.json()["identity_secret"] for r in done}


async def test_tool_secrets_rotated_at_once(raced: Raced) -> None:
    done = answered(await raced.at_once("POST", "tool-secret"), 200)
    stored = raced.decrypt((await raced.stored()).tool_secret)
    assert stored in {r.json()["tool_secret"] for r in done}


async def test_model_keys_set_and_removed_at_once(raced: Raced) -> None:
    answered(await raced.at_once("PUT", "model-key", {"api_key": "sk-raced"}), 200)
    assert raced.decrypt((await raced.stored()).model_key) == "\nsk-raced"

    answered(await raced.at_once("DELETE", "model-key"), 204)
    assert (await raced.stored()).model_key is None
