"""An agent with OpenAI's hosted tools. ``file_search``: the model gets the vector stores of
the widget's knowledge bases, the visitor sees the tool's label while it searches, and the
answer cites the document it found (a ChatKit annotation, kept with the stored answer).
``web_search``: limited to the allowed domains, its label shown, the page it found cited."""

from __future__ import annotations

import httpx2
from chatkit.types import (
    AssistantMessageItem,
    FileSource,
    ProgressUpdateEvent,
    ThreadItemDoneEvent,
    ThreadStreamEvent,
    URLSource,
)
from fastapi import FastAPI
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import KnowledgeBase, Widget
from tests.chat.helpers import (
    chat_config,
    deltas,
    make_chat_widget,
    publish_unchecked,
    thread_of,
    visitor,
)
from tests.fakes.openai_server import DEFAULT_REPLY_TEXT, FakeOpenAI

LABEL = "Searching the help centre…"


async def indexed_store(fake: FakeOpenAI) -> str:
    """A vector store holding ``returns.md``, made through OpenAI's API."""
    openai = AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url)
    store = await openai.vector_stores.create(name="Help")
    file = await openai.files.create(
        file=("returns.md", b"Returns are free.", "text/markdown"), purpose="assistants"
    )
    await openai.vector_stores.files.create(store.id, file_id=file.id)
    return store.id


async def searching_widget(
    db: AsyncSession, app: FastAPI, fake: FakeOpenAI, store: str | None
) -> Widget:
    widget = await make_chat_widget(db, app, fake)
    base = KnowledgeBase(tenant_id=widget.tenant_id, name="Help centre", vector_store_id=store)
    db.add(base)
    await db.flush()
    tool = {
        "type": "file_search",
        "id": "help",
        "label": LABEL,
        "knowledge_bases": [str(base.id)],
        "max_results": 3,
    }
    await publish_unchecked(db, widget, chat_config(fake, agent={"tools": [tool]}))
    return widget


def answer(events: list[ThreadStreamEvent]) -> AssistantMessageItem:
    [item] = [
        e.item
        for e in events
        if isinstance(e, ThreadItemDoneEvent) and isinstance(e.item, AssistantMessageItem)
    ]
    return item


async def test_the_answer_searches_the_knowledge_base_and_cites_it(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    store = await indexed_store(fake_openai)
    widget = await searching_widget(db, app, fake_openai, store)
    alice = await visitor(http, app, db, widget)

    events = await alice.send("Are returns free?")

    assert fake_openai.vector_stores.searches == [
        {"type": "file_search", "vector_store_ids": [store], "max_num_results": 3}
    ]
    progress = [(i, e) for i, e in enumerate(events) if isinstance(e, ProgressUpdateEvent)]
    assert [(p.icon, p.text) for _, p in progress] == [("search", LABEL)]
    first_text = next(i for i, e in enumerate(events) if deltas([e]))
    assert progress[0][0] < first_text, "the label shows before the answer"
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT
    [content] = answer(events).content
    [(source, index)] = [(a.source, a.index) for a in content.annotations]
    assert isinstance(source, FileSource)
    assert (source.filename, index) == ("returns.md", 0)

    items = await alice.call("items.list", thread_id=thread_of(events))
    [stored] = [i for i in items["data"] if i["type"] == "assistant_message"]
    [annotation] = stored["content"][0]["annotations"]
    assert annotation["source"]["filename"] == "returns.md"


async def test_a_knowledge_base_with_nothing_indexed_yet_is_not_searched(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await searching_widget(db, app, fake_openai, store=None)
    alice = await visitor(http, app, db, widget)

    events = await alice.send("Are returns free?")

    assert fake_openai.vector_stores.searches == []
    assert not [e for e in events if isinstance(e, ProgressUpdateEvent)]
    assert "".join(deltas(events)) == DEFAULT_REPLY_TEXT


async def test_the_answer_searches_the_allowed_domains_and_cites_the_page(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await make_chat_widget(db, app, fake_openai)
    tool = {
        "type": "web_search",
        "id": "web",
        "label": "Searching acme.example…",
        "allowed_domains": ["acme.example"],
    }
    await publish_unchecked(db, widget, chat_config(fake_openai, agent={"tools": [tool]}))
    alice = await visitor(http, app, db, widget)

    events = await alice.send("What do tents cost?")

    [sent] = fake_openai.web_searches
    assert sent["filters"] == {"allowed_domains": ["acme.example"]}
    assert "user_location" not in sent or sent["user_location"] is None
    progress = [e.text for e in events if isinstance(e, ProgressUpdateEvent)]
    assert progress == ["Searching acme.example…"]
    [content] = answer(events).content
    [source] = [a.source for a in content.annotations]
    assert isinstance(source, URLSource)
    assert source.url == "https://acme.example/answer"
