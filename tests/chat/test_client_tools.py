"""An agent's ``client`` tools through the ChatKit endpoint: the model's call ends the answer
as ChatKit's pending client tool call (with the tool's label as progress, never sent to the
model as an output), the page's output comes back with ``threads.add_client_tool_output``,
reaches the model as the call's output, and the model answers from it; an output needs a
pending call of the end user's own thread, and must be storable."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from chatkit.types import ClientToolCallItem, ProgressUpdateEvent, ThreadStreamEvent
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat import client_tools
from kithost.models import Widget
from tests.chat.helpers import (
    BOB,
    Visitor,
    assert_problem,
    chat_config,
    client_tool,
    decode,
    deltas,
    done_items,
    make_chat_widget,
    thread_of,
)
from tests.chat.helpers import visitor as make_visitor
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI

CART = {"items": [{"sku": "tee-1", "quantity": 2}], "total": "€38.00"}


async def cart_widget(
    db: AsyncSession, app: FastAPI, fake: FakeOpenAI, model_api: str = "responses"
) -> Widget:
    config = chat_config(fake, agent={"model_api": model_api, "tools": [client_tool()]})
    return await make_chat_widget(db, app, fake, config)


def pending_call(events: list[ThreadStreamEvent]) -> ClientToolCallItem:
    [call] = done_items(events, ClientToolCallItem)
    return call


async def answer(visitor: Visitor, thread_id: str, result: Any) -> httpx2.Response:
    return await visitor.post("threads.add_client_tool_output", thread_id=thread_id, result=result)


@pytest.mark.parametrize("model_api", ["responses", "chat_completions"])
async def test_the_pages_output_reaches_the_model_which_answers_from_it(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    model_api: str,
) -> None:
    widget = await cart_widget(db, app, fake_openai, model_api)
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("get_cart", {"currency": "EUR"})

    events = await alice.send("What is in my cart?")

    call = pending_call(events)
    assert (call.name, call.arguments, call.status) == ("get_cart", {"currency": "EUR"}, "pending")
    assert call.call_id.startswith("call_")
    assert call.id.startswith("msg_")  # Kithost's id, not the model's
    progress = [e.text for e in events if isinstance(e, ProgressUpdateEvent)]
    assert progress == ["Looking at your cart…"]
    assert deltas(events) == []
    assert fake_openai.function_outputs == []  # the answer stopped at the call
    thread_id = thread_of(events)

    response = await answer(alice, thread_id, CART)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")

    assert [json.loads(o) for o in fake_openai.function_outputs] == [CART]
    assert "".join(deltas(decode(response.text))) == DEFAULT_REPLY_TEXT
    items = await alice.call("items.list", thread_id=thread_id, order="asc")
    kinds = [(i["type"], i.get("status")) for i in items["data"]]
    assert kinds == [
        ("user_message", None),
        ("client_tool_call", "completed"),
        ("assistant_message", None),
    ]
    assert items["data"][1]["output"] == CART

    # A second call in the same thread gets an id of its own (Chat Completions streams give
    # every call the same placeholder id).
    fake_openai.call_function("get_cart", {})
    again = await alice.send("And now?", thread_id=thread_id)
    assert pending_call(again).id != call.id
    assert (await answer(alice, thread_id, {"items": []})).status_code == 200
    assert [json.loads(o) for o in fake_openai.function_outputs][-1] == {"items": []}


async def test_an_output_needs_a_pending_call(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await cart_widget(db, app, fake_openai)
    alice = await make_visitor(http, app, db, widget)
    events = await alice.send("Hello")  # answered with text: no call
    thread_id = thread_of(events)

    assert_problem(await answer(alice, thread_id, CART), 409, "no_pending_tool_call")

    fake_openai.call_function("get_cart", {})
    await alice.send("My cart?", thread_id=thread_id)
    assert (await answer(alice, thread_id, CART)).status_code == 200
    # answered already
    assert_problem(await answer(alice, thread_id, CART), 409, "no_pending_tool_call")
    assert_problem(await answer(alice, "thr_" + "x" * 22, CART), 404, "thread_not_found")


async def test_an_output_whose_call_another_answered_after_its_check_is_a_409(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Of two outputs for one call, the second passed the endpoint's check and the first
    completed the call before the SDK read the thread again: the SDK found no pending call
    and raised (a 500, logged as an error). It is the store's 409, as for outputs sent at
    once."""
    widget = await cart_widget(db, app, fake_openai)
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("get_cart", {})
    thread_id = thread_of(await alice.send("My cart?"))
    checked = client_tools.check_output
    first: list[httpx2.Response | None] = []

    async def checked_then_answered_by_another(*args: Any) -> None:
        await checked(*args)
        if not first:  # once: the first's own check comes here too
            first.append(None)
            first[0] = await answer(alice, thread_id, CART)

    monkeypatch.setattr(client_tools, "check_output", checked_then_answered_by_another)
    second = await answer(alice, thread_id, {"items": []})

    assert first[0] is not None
    assert first[0].status_code == 200
    assert_problem(second, 409, "no_pending_tool_call")
    assert [json.loads(o) for o in fake_openai.function_outputs] == [CART]


async def test_only_the_threads_end_user_may_answer_its_call(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await cart_widget(db, app, fake_openai)
    alice = await make_visitor(http, app, db, widget)
    bob = await make_visitor(http, app, db, widget, end_user=BOB)
    fake_openai.call_function("get_cart", {})
    thread_id = thread_of(await alice.send("My cart?"))

    assert_problem(await answer(bob, thread_id, {"items": ["forged"]}), 404, "thread_not_found")

    assert fake_openai.function_outputs == []
    assert (await answer(alice, thread_id, CART)).status_code == 200
    assert [json.loads(o) for o in fake_openai.function_outputs] == [CART]


async def test_an_output_that_cannot_be_stored_is_refused_with_the_field(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await cart_widget(db, app, fake_openai)
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("get_cart", {})
    thread_id = thread_of(await alice.send("My cart?"))

    body = assert_problem(
        await answer(alice, thread_id, {"note": "a\x00b"}), 422, "validation_failed"
    )
    assert body["errors"] == [
        {
            "field": "params.result.note",
            "message": "NUL characters (U+0000) are not allowed",
            "type": "nul_character",
        }
    ]
    assert (await answer(alice, thread_id, CART)).status_code == 200  # still pending


@pytest.mark.parametrize(
    ("arguments", "error"),
    [("{oops", "The arguments are not JSON."), ("[1]", "The arguments are not a JSON object.")],
)
async def test_arguments_the_page_cannot_take_go_back_to_the_model_as_an_error(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    arguments: str,
    error: str,
) -> None:
    widget = await cart_widget(db, app, fake_openai)
    alice = await make_visitor(http, app, db, widget)
    fake_openai.call_function("get_cart", arguments)

    events = await alice.send("My cart?")

    assert done_items(events, ClientToolCallItem) == []  # the page is not asked
    assert [json.loads(o) for o in fake_openai.function_outputs] == [{"error": error}]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
