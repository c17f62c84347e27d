"""Without any OpenAI key, the demo tenant's widget answers from the demo model (saying so);
any other tenant's widget says it is not set up; production never uses the demo model."""

from __future__ import annotations

import httpx2
from chatkit.types import ErrorEvent, ThreadStreamEvent
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.chat.demo_model import REPLY
from kithost.db import session_scope
from kithost.demo import seed_demo
from kithost.models import Widget
from kithost.settings import Environment, Settings
from kithost.widgets.config import WidgetConfig
from tests.chat.helpers import deltas, visitor
from tests.conftest import LoopbackServer, create_test_app
from tests.visitor.helpers import make_widget

NOT_SET_UP = "This chat is not set up to answer yet."


async def ask_the_demo_widget(app: FastAPI, loopback: LoopbackServer) -> list[ThreadStreamEvent]:
    """A visitor's first message to the demo widget (seeded now), on the framed page's origin."""
    loopback.app = app
    async with session_scope(app.state.sessionmaker) as db:
        seed = await seed_demo(db, app.state.settings)
        widget = await db.scalar(select(Widget).where(Widget.public_key == seed.widget_public_key))
        assert widget is not None
        async with httpx2.AsyncClient(base_url=loopback.url, timeout=30) as http:
            alice = await visitor(http, app, db, widget, origin=app.state.settings.base_url)
            await db.commit()
            return await alice.send("Hello?")


async def test_the_demo_widget_answers_from_the_demo_model_without_a_key(
    app: FastAPI, loopback: LoopbackServer
) -> None:
    events = await ask_the_demo_widget(app, loopback)
    assert "".join(deltas(events)) == REPLY
    assert not [e for e in events if isinstance(e, ErrorEvent)]


async def test_in_production_the_demo_widget_is_not_set_up_either(
    settings: Settings, connection: AsyncConnection, loopback: LoopbackServer
) -> None:
    app = create_test_app(settings, connection, env=Environment.production)
    events = await ask_the_demo_widget(app, loopback)
    assert deltas(events) == []
    assert [e.message for e in events if isinstance(e, ErrorEvent)] == [NOT_SET_UP]


async def test_another_tenants_widget_without_a_key_is_not_set_up(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession
) -> None:
    widget = await make_widget(db, config=WidgetConfig())
    alice = await visitor(http, app, db, widget)
    events = await alice.send("Hello?")
    assert deltas(events) == []
    assert [e.message for e in events if isinstance(e, ErrorEvent)] == [NOT_SET_UP]
