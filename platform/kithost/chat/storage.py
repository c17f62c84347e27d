"""Where attachment bytes live: a small interface, and the local-disk implementation.

Keys are ``tenant/widget/attachment`` ids (``blob_key``), never user input. An
S3-compatible implementation only needs the three methods of :class:`BlobStorage`.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Protocol

from kithost.settings import Settings


class BlobStorage(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None:
        """The bytes under ``key``; None when there are none."""
        ...

    async def delete(self, keys: list[str]) -> None:
        """Remove ``keys``; missing ones are fine (deletion is retried and repeated)."""
        ...


def blob_key(tenant_id: uuid.UUID, widget_id: uuid.UUID, attachment_id: str) -> str:
    return f"{tenant_id}/{widget_id}/{attachment_id}"


class LocalDiskStorage:
    """Files under a directory (``KITHOST_CHAT_ATTACHMENT_DIR``), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"bad storage key {key!r}")
        return self.root.joinpath(*parts)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, self._path(key))

    async def delete(self, keys: list[str]) -> None:
        paths = [self._path(key) for key in keys]
        await asyncio.to_thread(self._delete, paths)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)

    @staticmethod
    def _delete(paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    @staticmethod
    def _get(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None


def storage_for(settings: Settings) -> BlobStorage:
    return LocalDiskStorage(settings.attachments_dir)
