"""What the session tests share: a published widget allowing the shop's origin, a visitor's
device id, minting from a page, and the test app with a hosted widget's OpenAI at the fake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.auth.principals import CLI
from kithost.models import Tenant, Widget
from kithost.settings import Settings
from kithost.widgets.service import create_widget, publish_draft
from tests.conftest import create_test_app
from tests.factories import make_tenant, set_draft
from tests.fakes.openai_server import FakeOpenAI

SHOP = "https://shop.example.com"
DEVICE = "anon_" + "d" * 24


@dataclass
class Published:
    tenant: Tenant
    widget: Widget

    @property
    def url(self) -> str:
        return f"/v1/embed/{self.widget.public_key}/session"


async def publish(db: AsyncSession, config: dict[str, Any] | None = None) -> Published:
    tenant = await make_tenant(db)
    widget = await create_widget(
        db, CLI, tenant, name="chat", origins=[SHOP, "https://*.example.org"]
    )
    if config is not None:
        set_draft(widget, config)
    await publish_draft(db, CLI, widget, published_by=None)
    await db.flush()
    return Published(tenant, widget)


async def mint(
    client: httpx2.AsyncClient, target: Published, body: dict[str, Any], origin: str | None = SHOP
) -> httpx2.Response:
    headers = {"Origin": origin} if origin else {}
    return await client.post(target.url, json=body, headers=headers)


HOSTED = {"mode": "hosted", "hosted": {"workflow_id": "wf_demo", "state_variables": ["plan"]}}


def create_hosted_app(
    settings: Settings, connection: AsyncConnection, fake_openai: FakeOpenAI
) -> FastAPI:
    """The test app with OpenAI at ``fake_openai`` (the platform key its key)."""
    return create_test_app(
        settings,
        connection,
        openai_base_url=fake_openai.base_url,
        openai_api_key=SecretStr(fake_openai.api_key),
        openai_timeout_seconds=1,
    )
