"""Attachments probed as an attacker would: files that lie about themselves, ids and links
of others, and attachments bound twice."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from chatkit.types import Attachment
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.chat.context import ChatContext
from kithost.chat.errors import ChatNotFound
from kithost.chat.store import SqlStore
from kithost.errors import Conflict
from kithost.visitor import service as visitor_service
from tests.chat.helpers import (
    ALICE,
    PNG,
    Visitor,
    assert_problem,
    attachment_widget,
    blob,
    create,
    path_of,
    store_of,
    thread_of,
    upload,
    visitor,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.visitor.helpers import ORIGIN

HTML = b"<html><script>alert(document.domain)</script></html>"


def upload_url(attachment: dict[str, Any]) -> str:
    return path_of(attachment["upload_descriptor"]["url"])


@pytest.mark.parametrize("data", [PNG[:-1], b""])
async def test_an_upload_shorter_than_announced_is_refused(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI, data: bytes
) -> None:
    """The size ``attachments.create`` announced is the file's: staff and the model read it."""
    alice = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))
    attachment = await create(alice)

    assert_problem(await upload(http, attachment, data), 409, "attachment_mismatch")
    assert (await upload(http, attachment)).status_code == 200


@dataclass(frozen=True)
class Uploaded:
    """Alice, her threads, her uploaded attachment as the store loads it for her."""

    alice: Visitor
    thread_ids: list[str]
    attachment: Attachment
    store: SqlStore
    context: ChatContext


async def uploaded(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake: FakeOpenAI, threads: int
) -> Uploaded:
    widget = await attachment_widget(db, app, fake)
    alice = await visitor(http, app, db, widget)
    thread_ids = [thread_of(await alice.send(f"Message {n}")) for n in range(threads)]
    created = await create(alice)
    assert (await upload(http, created)).status_code == 200
    published = (await visitor_service.load(db, widget.public_key)).published
    assert published is not None
    context = ChatContext(published, ALICE, ORIGIN, None, None, 0.0)
    store = store_of(app)
    attachment = await store.load_attachment(created["id"], context)
    return Uploaded(alice, thread_ids, attachment, store, context)


async def test_a_sent_attachment_is_not_bound_to_another_thread(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """Two messages at once may both find an attachment unsent (``attachable``); the second
    to store it is refused, instead of taking it from the first (whose thread's deletion
    would then delete the bytes the second's message shows)."""
    made = await uploaded(http, app, db, fake_openai, threads=2)
    first, second = made.thread_ids
    bound = made.attachment.model_copy(update={"thread_id": first})
    taken = made.attachment.model_copy(update={"thread_id": second})

    await made.store.save_attachment(bound, made.context)
    with pytest.raises(Conflict) as refused:
        await made.store.save_attachment(taken, made.context)

    assert refused.value.code == "attachment_in_use"
    assert (await made.store.load_attachment(bound.id, made.context)).thread_id == first


async def test_a_deleted_attachment_is_not_bound_to_a_message(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """A message sent as its attachment is deleted may find it (``attachable``) before the
    deletion; storing the message then finds it gone, rather than writing it again without
    its bytes (a message carrying a file that no longer exists)."""
    made = await uploaded(http, app, db, fake_openai, threads=1)
    attachment_id = made.attachment.id
    assert await made.alice.call("attachments.delete", attachment_id=attachment_id) == {}
    bound = made.attachment.model_copy(update={"thread_id": made.thread_ids[0]})

    with pytest.raises(ChatNotFound) as refused:
        await made.store.save_attachment(bound, made.context)

    assert refused.value.code == "attachment_not_found"
    with pytest.raises(ChatNotFound):
        await made.store.load_attachment(attachment_id, made.context)


async def test_what_holds(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """HTML uploaded as image/png is never run; broken multiparts, links of other
    attachments and previews before the upload or after the deletion are refused."""
    alice = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))
    attachment = await create(alice, size=len(HTML))
    other = await create(alice)
    url = upload_url(attachment)
    preview = path_of(attachment["preview_url"])
    assert_problem(await http.get(preview), 404, "attachment_not_found")  # not uploaded
    two = {"file": ("a.png", HTML, "image/png")}
    both = await http.post(url, files=[*two.items(), ("file", ("b.png", HTML, "image/png"))])
    assert_problem(both, 400, "invalid_upload")
    nameless = await http.post(url, files={"file": (None, HTML, "image/png")})
    assert_problem(nameless, 400, "invalid_upload")
    foreign = url.replace(attachment["id"], other["id"])
    assert_problem(await http.post(foreign, files=two), 401, "invalid_attachment_token")
    huge = await http.post(url, files={"file": ("x" * 100_000, HTML, "image/png")})
    assert_problem(huge, 413, "payload_too_large")  # far over the announced size
    named = {"file": ("../../\x00.png", HTML, "image/png")}  # names are never paths
    assert (await http.post(url, files=named)).status_code == 200

    shown = await http.get(preview)

    assert shown.status_code == 200
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in shown.headers["content-security-policy"]
    assert "script-src" not in shown.headers["content-security-policy"]
    with_upload_token = await http.get(url.replace("/upload", "/preview"))
    assert_problem(with_upload_token, 401, "invalid_attachment_token")
    assert await alice.call("attachments.delete", attachment_id=attachment["id"]) == {}
    assert_problem(await http.get(preview), 404, "attachment_not_found")


async def test_an_upload_leaves_no_temporary_file_behind(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The file goes through a temporary file on its way to the storage, removed once it is
    stored or refused."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    alice = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))
    attachment = await create(alice)

    assert_problem(await upload(http, attachment, PNG[:-1]), 409, "attachment_mismatch")
    assert (await upload(http, attachment)).status_code == 200

    assert os.listdir(tmp_path) == []


async def test_an_attachment_whose_bytes_are_gone_is_not_found(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """The preview streams, but only once the stored file's first piece is read: bytes lost
    from the storage are a 404 problem the frame can read, not a stream cut short."""
    widget = await attachment_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    attachment = await create(alice)
    uploaded = await upload(http, attachment)
    preview = path_of(uploaded.json()["preview_url"])
    shown = await http.get(preview)
    assert (shown.content, shown.headers["content-length"]) == (PNG, str(len(PNG)))

    blob(app, widget, attachment["id"]).unlink()

    lost = await http.get(preview)
    assert_problem(lost, 404, "attachment_not_found")
    assert lost.headers["access-control-allow-origin"] == "*"


async def test_an_upload_is_read_no_further_than_announced(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """A file far over the size its attachment announced is cut off there (413), not read
    up to the platform's cap: an attachment announced at 28 bytes takes no 2 MB."""
    alice = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))
    attachment = await create(alice)

    over = await upload(http, attachment, PNG * 80_000)

    assert_problem(over, 413, "payload_too_large")
    assert (await upload(http, attachment)).status_code == 200


async def test_another_widgets_attachment_is_out_of_reach(
    http: httpx2.AsyncClient, app: FastAPI, db: AsyncSession, fake_openai: FakeOpenAI
) -> None:
    """The same end user id on another tenant's widget holds none of the first widget's
    attachments (held up: the store filters by tenant, widget and end user)."""
    alice = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))
    elsewhere = await visitor(http, app, db, await attachment_widget(db, app, fake_openai))
    attachment = await create(alice)
    assert (await upload(http, attachment)).status_code == 200
    message = {"content": [], "attachments": [attachment["id"]], "inference_options": {}}

    refused = await elsewhere.post("threads.create", input=message)

    assert_problem(refused, 404, "attachment_not_found")
    deleted = await elsewhere.post("attachments.delete", attachment_id=attachment["id"])
    assert_problem(deleted, 404, "attachment_not_found")
    assert (await http.get(path_of(attachment["preview_url"]))).status_code == 200
