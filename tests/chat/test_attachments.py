"""Two-phase attachments: create, upload to the signed URL, preview, send, delete."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import json
from pathlib import Path
from typing import Any, BinaryIO

import httpx2
import pytest
from chatkit.types import AttachmentCreateParams
from fastapi import FastAPI
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kithost.auth.principals import CLI
from kithost.chat import agent
from kithost.chat.attachments import MAX_UNSENT
from kithost.chat.context import ChatContext
from kithost.chat.errors import ChatNotFound
from kithost.chat.runtime import runtime
from kithost.db import create_sessionmaker
from kithost.models import ChatAttachment, Tenant
from kithost.storage import LocalDiskStorage, blob_key
from kithost.visitor import service as visitor_service
from kithost.widgets.config import WidgetConfig
from kithost.widgets.service import create_widget
from kithost.worker.enqueue import PendingTasks
from tests.chat.helpers import (
    ALICE,
    ATTACHMENTS,
    BOB,
    PNG,
    assert_problem,
    attachment_widget,
    blob,
    chat_config,
    create,
    make_chat_widget,
    model_requests,
    path_of,
    thread_of,
    upload,
    visitor,
)
from tests.conftest import concurrent_sessions, state_of
from tests.factories import bare_tenant
from tests.fakes.openai_server import FakeOpenAI
from tests.visitor.helpers import ORIGIN, publish


async def test_upload_preview_send_and_delete(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await attachment_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    attachment = await create(alice)
    assert attachment["type"] == "image"
    assert "metadata" not in attachment

    uploaded = await upload(http, attachment)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.headers["access-control-allow-origin"] == "*"
    assert "upload_descriptor" not in uploaded.json()
    assert_problem(await upload(http, attachment), 409, "attachment_uploaded")
    assert blob(app, widget, attachment["id"]).read_bytes() == PNG

    preview = await http.get(path_of(uploaded.json()["preview_url"]))
    assert preview.status_code == 200
    assert (preview.content, preview.headers["content-type"]) == (PNG, "image/png")
    assert "sandbox" in preview.headers["content-security-policy"]
    tampered = path_of(uploaded.json()["preview_url"]).replace("token=", "token=x")
    assert_problem(await http.get(tampered), 401, "invalid_attachment_token")

    events = await alice.send("What is this?", attachments=[attachment["id"]])
    thread_id = thread_of(events)
    [content] = [
        m["content"] for m in fake_openai.requests[-1].json["input"] if m["role"] == "user"
    ]
    image = next(part for part in content if part["type"] == "input_image")
    assert image["image_url"].startswith("data:image/png;base64,")
    items = await alice.call("items.list", thread_id=thread_id, order="asc")
    [sent] = items["data"][0]["attachments"]
    assert sent["id"] == attachment["id"]
    assert (await http.get(path_of(sent["preview_url"]))).content == PNG

    again = await alice.post(
        "threads.create",
        input={"content": [], "attachments": [attachment["id"]], "inference_options": {}},
    )
    assert_problem(again, 409, "attachment_in_use")
    assert_problem(
        await alice.post("attachments.delete", attachment_id=attachment["id"]),
        409,
        "attachment_in_use",
    )

    assert await alice.call("threads.delete", thread_id=thread_id) == {}
    assert not blob(app, widget, attachment["id"]).exists()
    assert_problem(await http.get(path_of(sent["preview_url"])), 404, "attachment_not_found")


async def test_unsent_attachments_are_deleted_with_their_bytes(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await attachment_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    attachment = await create(alice, "notes.txt", 5, "text/plain")
    assert attachment["type"] == "file"
    assert (await upload(http, attachment, b"notes", "text/plain")).status_code == 200

    assert await alice.call("attachments.delete", attachment_id=attachment["id"]) == {}

    assert not blob(app, widget, attachment["id"]).exists()
    gone = await alice.post("attachments.delete", attachment_id=attachment["id"])
    assert_problem(gone, 404, "attachment_not_found")


async def test_attachments_of_others_are_out_of_reach(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    widget = await attachment_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    bob = await visitor(http, app, db, widget, end_user=BOB)
    attachment = await create(alice)
    mine = await create(bob)
    # Alice's upload URL does not open Bob's attachment (the token names the attachment).
    foreign = {
        "upload_descriptor": {
            **attachment["upload_descriptor"],
            "url": attachment["upload_descriptor"]["url"].replace(attachment["id"], mine["id"]),
        }
    }
    assert_problem(await upload(http, foreign), 401, "invalid_attachment_token")
    assert (await upload(http, attachment)).status_code == 200

    message = {"content": [], "attachments": [attachment["id"]], "inference_options": {}}
    assert_problem(await bob.post("threads.create", input=message), 404, "attachment_not_found")
    deleted = await bob.post("attachments.delete", attachment_id=attachment["id"])
    assert_problem(deleted, 404, "attachment_not_found")
    assert blob(app, widget, attachment["id"]).exists()


async def test_limits_from_the_widget_config(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    alice = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))
    too_large = await alice.post(
        "attachments.create", name="a.png", size=1001, mime_type="image/png"
    )
    assert_problem(too_large, 422, "attachment_too_large")
    assert too_large.json()["errors"][0]["field"] == "params.size"
    other = await alice.post(
        "attachments.create", name="a.pdf", size=10, mime_type="application/pdf"
    )
    assert_problem(other, 422, "attachment_type_not_allowed")
    text = await alice.post("attachments.create", name="a.txt", size=101, mime_type="text/plain")
    assert_problem(text, 422, "attachment_too_large")  # the "*" limit

    attachment = await create(alice, size=4)
    assert_problem(await upload(http, attachment), 409, "attachment_mismatch")  # > declared
    assert_problem(await upload(http, attachment, PNG[:4], "image/gif"), 409, "attachment_mismatch")
    not_multipart = await http.post(path_of(attachment["upload_descriptor"]["url"]), content=PNG)
    assert_problem(not_multipart, 400, "invalid_upload")
    unsent = {"content": [], "attachments": [attachment["id"]], "inference_options": {}}
    assert_problem(await alice.post("threads.create", input=unsent), 409, "attachment_not_uploaded")

    plain = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai))
    disabled = await plain.post("attachments.create", name="a.png", size=4, mime_type="image/png")
    assert_problem(disabled, 403, "attachments_disabled")


async def test_an_attachment_goes_once_into_a_message(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    alice = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))
    attachment = await create(alice)
    assert (await upload(http, attachment)).status_code == 200
    twice = {"content": [], "attachments": [attachment["id"]] * 2, "inference_options": {}}

    refused = await alice.post("threads.create", input=twice)

    assert_problem(refused, 422, "validation_failed")
    assert refused.json()["errors"][0]["field"] == "params.input.attachments"
    assert (await alice.call("threads.list"))["data"] == []  # nothing stored
    events = await alice.send("What is this?", attachments=[attachment["id"]])  # still usable
    items = await alice.call("items.list", thread_id=thread_of(events), order="asc")
    assert [a["id"] for a in items["data"][0]["attachments"]] == [attachment["id"]]


def user_contents(fake: FakeOpenAI) -> list[list[dict[str, Any]]]:
    """The content parts of each user message of the latest model request."""
    body = model_requests(fake)[-1]
    return [m["content"] for m in body["input"] if m.get("role") == "user"]


def inlined(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_only_the_latest_messages_attachments_are_inlined(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """An answer reads and sends the bytes of the message it answers, not those of every
    attachment in the history: those are named to the model instead."""
    alice = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))
    first = await create(alice, "first.txt", 5, "text/plain")
    assert (await upload(http, first, b"alpha", "text/plain")).status_code == 200
    thread_id = thread_of(await alice.send("One", attachments=[first["id"]]))
    second = await create(alice, "second.txt", 5, "text/plain")
    assert (await upload(http, second, b"bravo", "text/plain")).status_code == 200

    await alice.send("Two", thread_id, attachments=[second["id"]])

    earlier, latest = user_contents(fake_openai)
    assert earlier[1] == {
        "type": "input_text",
        "text": '[Attachment "first.txt" (text/plain): sent earlier in the conversation,'
        " not shown again.]",
    }
    assert latest[1]["type"] == "input_file"
    assert latest[1]["file_data"] == f"data:text/plain;base64,{inlined(b'bravo')}"
    assert inlined(b"alpha") not in json.dumps(model_requests(fake_openai)[-1])


async def test_attachments_beyond_the_inline_budget_are_named(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agent, "INLINE_ATTACHMENT_BYTES", 8)
    alice = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))
    attachments = [await create(alice, f"{n}.txt", 5, "text/plain") for n in ("a", "b")]
    for attachment, data in zip(attachments, [b"alpha", b"bravo"], strict=True):
        assert (await upload(http, attachment, data, "text/plain")).status_code == 200

    await alice.send("Both", attachments=[a["id"] for a in attachments])

    [content] = user_contents(fake_openai)
    assert content[1]["file_data"] == f"data:text/plain;base64,{inlined(b'alpha')}"
    assert content[2] == {
        "type": "input_text",
        "text": '[Attachment "b.txt" (text/plain): not shown: the message\'s files are too'
        " large together.]",
    }


class HeldStorage(LocalDiskStorage):
    """Local storage whose writes wait for :attr:`go` (an upload's bytes still arriving)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.putting = asyncio.Event()
        self.go = asyncio.Event()

    async def put_file(self, key: str, file: BinaryIO) -> None:
        self.putting.set()
        await self.go.wait()
        await super().put_file(key, file)


async def test_a_deletion_waits_for_the_upload_under_way(
    app: FastAPI, engine: AsyncEngine, tmp_path: Path
) -> None:
    """Two units of work at once, on their own connections: ``attachments.delete`` waits for
    the upload's row lock, then deletes the row and the bytes just written (it used to
    delete the row under the upload, which failed with a 500 and left its bytes behind)."""
    sessionmaker = concurrent_sessions(engine)
    async with sessionmaker() as setup:
        tenant = await bare_tenant(setup, "race")
        widget = await create_widget(setup, CLI, tenant, name="Raced")
        config = {"chatkit": {"composer": {"attachments": ATTACHMENTS}}}
        await publish(setup, widget, WidgetConfig.model_validate(config))
        published = (await visitor_service.load(setup, widget.public_key)).published
        await setup.commit()
    assert published is not None
    context = ChatContext(published, ALICE, ORIGIN, None, None, 0.0)
    storage = HeldStorage(tmp_path)
    units = create_sessionmaker(engine, PendingTasks(app.state.celery))  # each its connection
    chat = dataclasses.replace(runtime(state_of(app)), sessionmaker=units, storage=storage)
    try:
        created = await chat.attachment_store().create_attachment(
            AttachmentCreateParams(name="a.txt", size=5, mime_type="text/plain"), context
        )
        await chat.attachment_store().store.save_attachment(created, context)
        uploaded = io.BytesIO(b"alpha")  # as a small upload stays spooled in memory
        uploading = asyncio.create_task(
            chat.attachment_store().upload(created.id, uploaded, "text/plain", context)
        )
        await storage.putting.wait()

        async def delete_attachment() -> None:  # as the SDK handles attachments.delete
            attachments = chat.attachment_store()
            await attachments.delete_attachment(created.id, context)
            await attachments.store.delete_attachment(created.id, context)

        deleting = asyncio.create_task(delete_attachment())
        await asyncio.sleep(0.3)
        assert not deleting.done(), "the deletion waits for the upload's row lock"
        storage.go.set()
        await uploading
        await deleting

        assert await storage.get(blob_key(tenant.id, widget.id, created.id)) is None
        async with sessionmaker() as check:
            assert await check.get(ChatAttachment, created.id) is None
        with pytest.raises(ChatNotFound):
            await chat.attachment_store().upload(created.id, uploaded, "text/plain", context)
    finally:
        async with sessionmaker() as cleanup:
            await cleanup.execute(delete(Tenant).where(Tenant.id == tenant.id))
            await cleanup.commit()


async def test_unsent_attachments_are_capped_per_end_user(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """A visitor may hold MAX_UNSENT attachments no message carries; sending or deleting one
    makes room again, and another visitor has room of their own."""
    widget = await attachment_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    held = [await create(alice) for _ in range(MAX_UNSENT)]

    refused = await alice.post("attachments.create", name="a.png", size=4, mime_type="image/png")

    assert_problem(refused, 422, "too_many_attachments")
    assert (await create(await visitor(http, app, db, widget, end_user=BOB)))["id"]
    assert (await upload(http, held[0])).status_code == 200
    await alice.send("This one", attachments=[held[0]["id"]])
    assert (await create(alice))["id"]  # the sent one no longer counts
    await alice.call("attachments.delete", attachment_id=held[1]["id"])
    assert (await create(alice))["id"]
    again = await alice.post("attachments.create", name="a.png", size=4, mime_type="image/png")
    assert_problem(again, 422, "too_many_attachments")


async def test_only_raster_images_are_previewed_inline(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """An SVG's links would be clickable on Kithost's origin: it is served as a download."""
    accept = {"image/png": [".png"], "image/svg+xml": [".svg"]}
    attachments = {**ATTACHMENTS, "maxSize": 1000, "accept": accept}
    config = chat_config(fake_openai, chatkit={"composer": {"attachments": attachments}})
    alice = await visitor(http, app, db, await make_chat_widget(db, app, fake_openai, config))
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><a href="https://evil.example">x</a></svg>'
    shown = {}
    for data, mime_type in ((PNG, "image/png"), (svg, "image/svg+xml")):
        attachment = await create(alice, "a", len(data), mime_type)
        uploaded = await upload(http, attachment, data, mime_type)
        assert uploaded.status_code == 200, uploaded.text
        preview = await http.get(path_of(uploaded.json()["preview_url"]))
        assert (preview.status_code, preview.content) == (200, data)
        shown[mime_type] = preview.headers["content-disposition"]

    assert shown == {"image/png": "inline", "image/svg+xml": "attachment"}


@pytest.mark.parametrize("name", ["a\u202etxt.exe", "a\u200b.png", "a\x07.png"])
async def test_attachment_names_hold_no_invisible_characters(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    name: str,
) -> None:
    """Staff read the names: a bidi override (or a zero-width or control character) could
    make one read as another."""
    alice = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))

    refused = await alice.post("attachments.create", name=name, size=4, mime_type="image/png")

    assert_problem(refused, 422, "validation_failed")
    [error] = refused.json()["errors"]
    assert (error["field"], error["type"]) == ("params.name", "invisible_character")
    assert await db.scalar(select(func.count()).select_from(ChatAttachment)) == 0
