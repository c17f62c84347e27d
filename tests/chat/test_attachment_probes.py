"""Attachments probed as an attacker would: files that lie about themselves, and ids and
links of others."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.chat.helpers import (
    PNG,
    assert_problem,
    attachment_widget,
    create,
    path_of,
    upload,
    visitor,
)
from tests.fakes.openai_server import FakeOpenAI

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
    assert_problem(huge, 400, "invalid_upload")
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
