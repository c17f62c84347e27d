"""An attachment goes in and out in pieces, never whole in memory: an 8 MB file is uploaded
and previewed over a real socket while ``tracemalloc`` watches the process (server and
client both: uvicorn serves the app in the test's event loop) stay far below its size."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import httpx2
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.chat.helpers import (
    blob,
    chat_config,
    create,
    make_chat_widget,
    path_of,
    visitor,
)
from tests.fakes.openai_server import FakeOpenAI

SIZE = 8 * 1024 * 1024
MIME_TYPE = "image/png"


async def test_an_attachment_is_uploaded_and_previewed_in_pieces(
    http: httpx2.AsyncClient,
    app: FastAPI,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
) -> None:
    attachments = {"enabled": True, "maxSize": {"*": SIZE}}
    config = chat_config(fake_openai, chatkit={"composer": {"attachments": attachments}})
    widget = await make_chat_widget(db, app, fake_openai, config)
    alice = await visitor(http, app, db, widget)
    source = tmp_path / "big.png"
    with source.open("wb") as file:  # written in pieces too: the test holds no copy
        for index in range(SIZE // 65536):
            file.write(index.to_bytes(4, "big") * 16384)
    attachment = await create(alice, "big.png", SIZE, MIME_TYPE)

    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with source.open("rb") as file:  # httpx reads a file part in pieces
            uploaded = await http.post(
                path_of(attachment["upload_descriptor"]["url"]),
                files={"file": ("big.png", file, MIME_TYPE)},
            )
        _, upload_peak = tracemalloc.get_traced_memory()
        assert uploaded.status_code == 200, uploaded.text

        before_preview, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        received, digest = 0, hashlib.sha256()
        preview = path_of(uploaded.json()["preview_url"])
        async with http.stream("GET", preview) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(SIZE)
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                digest.update(chunk)
        _, preview_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert blob(app, widget, attachment["id"]).stat().st_size == SIZE
    assert (received, digest.hexdigest()) == (SIZE, _sha256(source))
    # Holding the file takes at least its size (the old routes held 9 MB uploading, 17 MB
    # previewing); its pieces, with the sockets' and parsers' buffers, a small part of it.
    held = {"upload": upload_peak - before, "preview": preview_peak - before_preview}
    megabytes = {step: f"{growth / 1e6:.1f} MB" for step, growth in held.items()}
    assert max(held.values()) < SIZE / 2, f"{megabytes} held for {SIZE / 1e6:.1f} MB"


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
