"""An ``http`` tool at a host name the deployment opens (``KITHOST_OUTBOUND_ALLOW``) that does
not resolve: an error the model sees, as for any other name. The resolver's error escaped
the outbound client unwrapped (an allowed name's answers are not checked, and its
resolution was not guarded), so the tool failed the whole answer."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat.runtime import create_runtime
from tests.chat.helpers import ORDER_ARGS, deltas, tool_widget
from tests.chat.helpers import visitor as make_visitor
from tests.conftest import state_of
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI


@pytest.mark.parametrize("answers", [None, []], ids=["unknown", "no-addresses"])
async def test_an_allowed_name_that_does_not_resolve_is_an_error_the_model_sees(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    answers: list[str] | None,
) -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers

    state = state_of(app)
    state.settings = state.settings.model_copy(update={"outbound_allow": "tools.internal"})
    state.outbound_resolver = resolver
    state.add(create_runtime(state))
    widget = await tool_widget(db, app, fake_openai, "http://tools.internal/order")
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("lookup_order", ORDER_ARGS)

    events = await alice.send("Where is my order?")

    assert asked == ["tools.internal"]
    [output] = [json.loads(o) for o in fake_openai.function_outputs]
    assert output == {
        "error": "Kithost may not call this tool's address: tools.internal: does not resolve"
    }
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
