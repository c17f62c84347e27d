"""Attachment bytes in an S3-compatible bucket: moto's S3 server on loopback stands in for
the service (real HTTP, real boto3 signing and errors)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx2
import pytest
from fastapi import FastAPI
from moto.server import ThreadedMotoServer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kithost.settings import Settings
from kithost.storage import CHUNK_BYTES, LocalDiskStorage, S3Storage, storage_for
from tests.chat.helpers import PNG, attachment_widget, create, path_of, upload, visitor
from tests.conftest import create_test_app, free_port
from tests.fakes.openai_server import FakeOpenAI

REGION = "us-east-1"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def s3_apart() -> Iterator[str]:
    """moto's S3 server in a process of its own: what it stores is not the test's memory."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx2.get(endpoint, timeout=1)
                break
            except httpx2.TransportError:
                time.sleep(0.05)
        yield endpoint
    finally:
        server.terminate()
        server.wait()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    return new_bucket(s3_endpoint, monkeypatch)


def new_bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket; boto3 finds the credentials where production gives them (``AWS_*``)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "kithost-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "kithost-test-secret")
    name = f"kithost-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    client.create_bucket(Bucket=name)
    return name


def s3_settings(endpoint: str, bucket: str) -> dict[str, object]:
    return {
        "attachment_storage_url": f"s3://{bucket}/attachments/",
        "s3_endpoint_url": endpoint,
        "s3_region": REGION,
    }


@pytest.fixture
def app(settings: Settings, connection: AsyncConnection, s3_endpoint: str, bucket: str) -> FastAPI:
    return create_test_app(settings, connection, **s3_settings(s3_endpoint, bucket))


def objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


async def test_put_get_delete_under_the_prefix(
    settings: Settings, s3_endpoint: str, bucket: str
) -> None:
    storage = storage_for(settings.model_copy(update=s3_settings(s3_endpoint, bucket)))
    assert isinstance(storage, S3Storage)
    await storage.put("t/w/a1", b"one")
    await storage.put("t/w/a2", b"two")
    assert objects(s3_endpoint, bucket) == {
        "attachments/t/w/a1": b"one",
        "attachments/t/w/a2": b"two",
    }
    assert await storage.get("t/w/a1") == b"one"
    assert await storage.get("t/w/missing") is None
    await storage.delete(["t/w/a1", "t/w/missing"])
    await storage.delete(["t/w/a1"])
    assert objects(s3_endpoint, bucket) == {"attachments/t/w/a2": b"two"}
    with pytest.raises(ValueError, match="bad storage key"):
        await storage.get("t/../a2")


@pytest.mark.parametrize("kind", ["s3", "disk"])
async def test_large_files_go_in_and_out_in_pieces(
    settings: Settings, s3_endpoint: str, bucket: str, tmp_path: Path, kind: str
) -> None:
    """Exports and uploads: an open file stored (from its start, wherever it stands: an
    upload's size check leaves it at its end) and read back a piece at a time, on both
    kinds."""
    chosen = (
        s3_settings(s3_endpoint, bucket)
        if kind == "s3"
        else {"attachment_storage_url": f"file://{tmp_path / 'blobs'}"}
    )
    storage = storage_for(settings.model_copy(update=chosen))
    data = secrets.token_bytes(CHUNK_BYTES * 2 + 5)
    with tempfile.TemporaryFile() as source:
        source.write(data)
        await storage.put_file("t/exports/e.jsonl", source)
    pieces = [piece async for piece in storage.chunks("t/exports/e.jsonl")]
    assert [len(p) for p in pieces] == [CHUNK_BYTES, CHUNK_BYTES, 5]
    assert b"".join(pieces) == data
    with pytest.raises(FileNotFoundError):
        await anext(storage.chunks("t/exports/missing"))


async def test_an_open_file_goes_to_the_bucket_in_pieces(
    settings: Settings, s3_apart: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """boto3 reads an open file's multipart parts whole into memory (8 MB each, up to ten at
    once): a 20 MB attachment was held whole, more than once. One PUT streams it."""
    bucket = new_bucket(s3_apart, monkeypatch)
    storage = storage_for(settings.model_copy(update=s3_settings(s3_apart, bucket)))
    size = 20 * 1024 * 1024
    with tempfile.TemporaryFile() as source:
        for _ in range(size // CHUNK_BYTES):
            source.write(secrets.token_bytes(CHUNK_BYTES))
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            await storage.put_file("t/w/big", source)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    client = boto3.client("s3", endpoint_url=s3_apart, region_name=REGION)
    stored = client.head_object(Bucket=bucket, Key="attachments/t/w/big")
    assert stored["ContentLength"] == size
    assert peak - before < size / 4, f"{(peak - before) / 1e6:.1f} MB held for {size / 1e6} MB"


async def test_an_unreachable_bucket_fails_loudly(settings: Settings, s3_endpoint: str) -> None:
    storage = storage_for(
        settings.model_copy(update=s3_settings(s3_endpoint, "kithost-no-such-bucket"))
    )
    with pytest.raises(Exception, match="NoSuchBucket"):
        await storage.put("t/w/a", b"x")


def test_the_storage_url_chooses_the_implementation(settings: Settings, tmp_path: Path) -> None:
    default = storage_for(settings)
    assert isinstance(default, LocalDiskStorage)
    assert default.root == settings.attachments_dir
    chosen = storage_for(
        settings.model_copy(update={"attachment_storage_url": f"file://{tmp_path}"})
    )
    assert isinstance(chosen, LocalDiskStorage)
    assert chosen.root == tmp_path
    for bad in ("s3:///prefix", "gs://bucket", "/var/attachments"):
        with pytest.raises(ValidationError, match="s3://bucket/prefix"):
            Settings(attachment_storage_url=bad)


async def test_visitors_upload_to_the_bucket(
    settings: Settings,
    app: FastAPI,
    s3_endpoint: str,
    bucket: str,
    http: httpx2.AsyncClient,
    db: AsyncSession,
    fake_openai: FakeOpenAI,
) -> None:
    widget = await attachment_widget(db, app, fake_openai)
    alice = await visitor(http, app, db, widget)
    attachment = await create(alice)
    uploaded = await upload(http, attachment)
    assert uploaded.status_code == 200, uploaded.text

    key = f"attachments/{widget.tenant_id}/{widget.id}/{attachment['id']}"
    assert objects(s3_endpoint, bucket) == {key: PNG}
    assert not (settings.attachments_dir / str(widget.tenant_id)).exists()
    preview = await http.get(path_of(uploaded.json()["preview_url"]))
    assert preview.content == PNG
