"""A real Celery worker process, on Redis and on the embedded (SQLite) broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import redis
from celery import Celery
from celery.result import AsyncResult
from fastapi import FastAPI
from kombu import Queue

from kithost.app import create_app
from kithost.db import DbSession
from kithost.errors import Conflict
from kithost.health.tasks import ping
from kithost.settings import Settings
from kithost.worker.app import create_celery
from kithost.worker.enqueue import enqueue
from tests.conftest import RABBITMQ_URL, REDIS_URL
from tests.workers import TIMEOUT, start_worker, stop_worker

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def redis_worker(task_queue: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("worker"), broker_url=REDIS_URL, task_queue=task_queue
    )
    process = start_worker(settings)
    yield
    stop_worker(process)


@pytest.fixture
def ping_route(app: FastAPI) -> FastAPI:
    @app.post("/t/ping/{task_id}")
    async def send_ping(task_id: str, session: DbSession, fail: bool = False) -> None:
        enqueue(session, ping, task_id, task_id=task_id)
        if fail:
            raise Conflict("the request fails after enqueueing")

    return app


@pytest.mark.usefixtures("redis_worker")
async def test_ping_round_trips_through_a_redis_worker(
    client: httpx2.AsyncClient, ping_route: FastAPI
) -> None:
    task_id = str(uuid.uuid4())
    response = await client.post(f"/t/ping/{task_id}")
    assert response.status_code == 200
    celery: Celery = ping_route.state.celery
    assert AsyncResult(task_id, app=celery).get(timeout=TIMEOUT) == task_id


@pytest.mark.usefixtures("redis_worker")
async def test_a_failed_request_sends_nothing(
    client: httpx2.AsyncClient, ping_route: FastAPI, task_queue: str
) -> None:
    celery: Celery = ping_route.state.celery
    failed, succeeded = str(uuid.uuid4()), str(uuid.uuid4())
    response = await client.post(f"/t/ping/{failed}", params={"fail": True})
    assert response.status_code == 409
    assert (await client.post(f"/t/ping/{succeeded}")).status_code == 200
    # One worker, one queue, FIFO: had the first been sent, it would have run first.
    assert AsyncResult(succeeded, app=celery).get(timeout=TIMEOUT) == succeeded
    assert AsyncResult(failed, app=celery).state == "PENDING"
    # Nor is it waiting: the queue is shared by the run, so look for this task only.
    waiting = redis.Redis.from_url(REDIS_URL).lrange(task_queue, 0, -1)
    assert not [message for message in waiting if failed.encode() in message]


async def test_ping_round_trips_through_the_embedded_broker(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, task_queue="embedded")
    assert settings.broker.startswith("sqla+sqlite:///")
    process = start_worker(settings)
    try:
        app = create_app(settings)

        @app.post("/t/ping/{task_id}")
        async def send_ping(task_id: str, session: DbSession) -> None:
            enqueue(session, ping, task_id, task_id=task_id)

        task_id = str(uuid.uuid4())
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.post(f"/t/ping/{task_id}")).status_code == 200
        result: AsyncResult[str] = AsyncResult(task_id, app=app.state.celery)
        assert result.get(timeout=TIMEOUT) == task_id
    finally:
        stop_worker(process)


def test_ping_round_trips_through_rabbitmq(task_queue: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url=RABBITMQ_URL, task_queue=f"{task_queue}-amqp")
    assert settings.results == "rpc://"
    celery = create_celery(settings)
    process = start_worker(settings)
    try:
        result: AsyncResult[str] = celery.send_task(ping.name, args=["over amqp"])
        assert result.get(timeout=TIMEOUT) == "over amqp"
    finally:
        stop_worker(process)
        with celery.connection_for_write() as connection:
            Queue(settings.task_queue, channel=connection.default_channel).delete()


def test_the_beat_sends_only_tasks_a_worker_knows(tmp_path: Path) -> None:
    """A task renamed without its schedule entry would be dropped every time it is due."""
    celery = create_celery(Settings(data_dir=tmp_path))
    celery.loader.import_default_modules()
    scheduled = {entry["task"] for entry in celery.conf.beat_schedule.values()}
    assert "kithost.conversations.announce_idle" in scheduled
    assert scheduled <= set(celery.tasks)
