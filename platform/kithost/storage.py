"""Where attachment bytes (and conversation exports) live: a small interface, a local-disk
implementation (one machine, or a ReadWriteMany volume shared by the pods) and an
S3-compatible one.

Keys are ``tenant/widget/attachment`` ids (``blob_key``), or ``tenant/exports/id.format``
(``conversations.exports``), never user input. Large files go in and out in pieces
(``put_file``, ``chunks``): never whole in memory.
``KITHOST_ATTACHMENT_STORAGE_URL`` chooses the implementation (:func:`storage_for`).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from kithost.settings import Settings

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

S3_DELETE_BATCH = 1000
"""The most keys one ``DeleteObjects`` call takes."""
S3_UPLOAD = TransferConfig(multipart_threshold=5 * 1024**3)
"""boto3's managed transfer reads an open file's multipart parts whole into memory (8 MB
each, up to ten at once: a 20 MB attachment was held whole); one ``PutObject`` streams the
file in pieces, so files go in one up to its limit (5 GiB), in parts only beyond it."""
CHUNK_BYTES = 256 * 1024


class BlobStorage(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def put_file(self, key: str, file: BinaryIO) -> None:
        """Store the bytes of ``file``, an open binary file, under ``key``, read in pieces
        from its start (it is rewound first, whatever its position). The caller reads
        nothing more of it: it may be closed when this returns (boto3 closes what it
        uploads)."""
        ...

    def chunks(self, key: str) -> AsyncIterator[bytes]:
        """The bytes under ``key`` in pieces of at most ``CHUNK_BYTES``; FileNotFoundError
        when there are none (raised by the first step)."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The bytes under ``key``; None when there are none."""
        ...

    async def delete(self, keys: list[str]) -> None:
        """Remove ``keys``; missing ones are fine (deletion is retried and repeated)."""
        ...


def blob_key(tenant_id: uuid.UUID, widget_id: uuid.UUID, attachment_id: str) -> str:
    return f"{tenant_id}/{widget_id}/{attachment_id}"


async def opened(storage: BlobStorage, key: str) -> AsyncIterator[bytes]:
    """The bytes under ``key`` in pieces (:meth:`BlobStorage.chunks`), the first already
    read: FileNotFoundError here, before any response that streams them starts (raised by
    its first step, it would break off a response already answered 200)."""
    rest = storage.chunks(key)
    first = await anext(rest, b"")
    return _after(first, rest)


async def _after(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for piece in rest:
        yield piece


class LocalDiskStorage:
    """Files under a directory (``KITHOST_CHAT_ATTACHMENT_DIR``), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_parts(key))

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, self._path(key))

    async def put_file(self, key: str, file: BinaryIO) -> None:
        await asyncio.to_thread(self._put_file, self._path(key), file)

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        file = await asyncio.to_thread(self._path(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
                yield chunk
        finally:
            file.close()

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
    def _put_file(path: Path, source: BinaryIO) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        source.seek(0)
        with partial.open("wb") as target:
            shutil.copyfileobj(source, target, CHUNK_BYTES)
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


class S3Storage:
    """Objects in an S3-compatible bucket under a prefix; boto3's blocking calls run in
    threads (its clients are thread-safe, so one serves the process)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return "/".join([self.prefix, *_parts(key)] if self.prefix else _parts(key))

    async def put(self, key: str, data: bytes) -> None:
        name = self._key(key)
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=name, Body=data)

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, self._key(key))

    async def put_file(self, key: str, file: BinaryIO) -> None:
        await asyncio.to_thread(self._put_file, self._key(key), file)

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        name = self._key(key)
        try:
            found = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=name)
        except self.client.exceptions.NoSuchKey as missing:
            raise FileNotFoundError(key) from missing
        body = found["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    async def delete(self, keys: list[str]) -> None:
        names = [self._key(key) for key in keys]
        for start in range(0, len(names), S3_DELETE_BATCH):
            batch = names[start : start + S3_DELETE_BATCH]
            await asyncio.to_thread(self._delete, batch)

    def _put_file(self, name: str, file: BinaryIO) -> None:
        file.seek(0)  # boto3 reads from where the file stands
        self.client.upload_fileobj(file, self.bucket, name, Config=S3_UPLOAD)

    def _get(self, name: str) -> bytes | None:
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=name)
        except self.client.exceptions.NoSuchKey:
            return None
        return found["Body"].read()

    def _delete(self, names: list[str]) -> None:
        answer = self.client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": name} for name in names], "Quiet": True},
        )
        if answer.get("Errors"):
            # Raised as OSError so the deleting task retries (chat.tasks.delete_blobs).
            raise OSError(f"S3 refused to delete: {answer['Errors']}")


def _parts(key: str) -> list[str]:
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"bad storage key {key!r}")
    return parts


def storage_for(settings: Settings) -> BlobStorage:
    """The storage ``KITHOST_ATTACHMENT_STORAGE_URL`` names (validated by the settings)."""
    url = urlsplit(settings.attachment_storage_url or "")
    if url.scheme == "s3":
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=Config(retries={"mode": "standard"}),
        )
        return S3Storage(client, url.netloc, url.path)
    if url.scheme == "file":
        return LocalDiskStorage(Path(url.path))
    return LocalDiskStorage(settings.attachments_dir)
