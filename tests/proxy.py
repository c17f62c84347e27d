"""A TCP proxy on loopback that a test can cut and restore, to play a server (the database,
the broker) going away and coming back; ``through_proxy``, an app on PostgreSQL through one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from kithost import migrate
from kithost.app import create_app
from tests.conftest import create_pg_database, drop_pg_database, make_settings


class CuttableProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; :meth:`cut` drops every connection and
    refuses new ones until :meth:`restore`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, upstream_writer})
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )
        self._writers.difference_update({writer, upstream_writer})


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def through_proxy(
    tmp_path: Path, task_queue: str
) -> AsyncIterator[tuple[FastAPI, CuttableProxy]]:
    """An app on a PostgreSQL database of its own, reached through a proxy the test cuts."""
    url = create_pg_database()
    await asyncio.to_thread(migrate.upgrade, make_settings(tmp_path, url, task_queue))
    direct = make_url(url)
    proxy = CuttableProxy(direct.host or "127.0.0.1", direct.port or 5432)
    await proxy.start()
    proxied = direct.set(port=proxy.port).render_as_string(hide_password=False)
    app = create_app(make_settings(tmp_path, proxied, task_queue))
    yield app, proxy
    await app.state.engine.dispose()
    await proxy.cut()
    drop_pg_database(url)
