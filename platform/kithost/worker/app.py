"""The Celery application, configured from :class:`kithost.settings.Settings`.

Tasks are declared with ``celery.shared_task`` in each domain's ``tasks.py`` and listed in
:data:`TASK_MODULES`; each process builds its app with :func:`create_celery` (the API in
``create_app``, workers and beat in the CLI).
"""

from __future__ import annotations

import sqlite3

import sqlalchemy
from celery import Celery
from kombu.transport import sqlalchemy as kombu_sqlalchemy

from kithost.settings import Settings

TASK_MODULES = [
    "kithost.analytics.ingestion.tasks",
    "kithost.analytics.rollups.tasks",
    "kithost.analytics.retention.tasks",
    "kithost.chat.tasks",
    "kithost.conversations.tasks",
    "kithost.health.tasks",
    "kithost.invitations.tasks",
    "kithost.knowledge.tasks",
    "kithost.webhooks.tasks",
]

# kombu's SQLAlchemy transport (the embedded broker) polls its table; once a second by
# default. It cannot be set per connection (the option is forwarded to create_engine).
# An idle worker then runs ~100 tiny queries a second; a busy one never waits long for its
# next task (bench/README.md: tasks).
kombu_sqlalchemy.Transport.polling_interval = 0.01


@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
def _embedded_broker_journal(dbapi_connection: object, _record: object) -> None:
    """The embedded broker's and results' SQLite files (the only ones opened with the
    synchronous ``sqlite3`` driver; Kithost's own database is aiosqlite's): WAL with
    ``synchronous=NORMAL``, so a task's send, fetch and ack are not an fsync each. A crash of
    a process loses nothing committed; only the machine's may lose the last moments."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _transport_options(settings: Settings) -> dict[str, object]:
    # Redis: a message a killed worker held goes back to the queue after this long. (The
    # SQLAlchemy transport passes its options to create_engine: give it none.)
    if settings.broker.startswith(("redis://", "rediss://")):
        return {"visibility_timeout": settings.broker_visibility_timeout_seconds}
    return {}


def create_celery(settings: Settings) -> Celery:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = Celery("kithost", include=TASK_MODULES, set_as_current=False)
    app.conf.update(
        broker_url=settings.broker,
        result_backend=settings.results,
        result_expires=3600,
        task_default_queue=settings.task_queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        enable_utc=True,
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        broker_transport_options=_transport_options(settings),
        beat_schedule={
            "analytics-rollup": {
                "task": "kithost.analytics.rollup",
                "schedule": settings.analytics_rollup_seconds,
            },
            "analytics-purge": {"task": "kithost.analytics.purge", "schedule": 3600.0},
            "conversations-idle": {
                "task": "kithost.conversations.announce_idle",
                "schedule": 60.0,
            },
            "conversations-exports-purge": {
                "task": "kithost.conversations.purge_exports",
                "schedule": 3600.0,
            },
        },
    )
    return app


def restore_unacknowledged(settings: Settings) -> int:
    """Embedded broker: put back on the queue the messages that a worker took and never
    acknowledged (it was killed). kombu's SQLAlchemy transport hides a message once taken and
    never shows it again, so without this a killed worker would lose its task. Run when a
    worker starts; with the one worker the embedded broker is meant for, nobody else holds
    a message then (another worker's would run twice: tasks are idempotent)."""
    if not settings.broker.startswith("sqla+"):
        return 0
    engine = sqlalchemy.create_engine(settings.broker.removeprefix("sqla+"))
    restore = sqlalchemy.text(
        "UPDATE kombu_message SET visible = :shown WHERE visible = :hidden"
        " AND queue_id IN (SELECT id FROM kombu_queue WHERE name = :queue)"
    )
    try:
        with engine.begin() as connection:
            params = {"shown": True, "hidden": False, "queue": settings.task_queue}
            return connection.execute(restore, params).rowcount
    except sqlalchemy.exc.OperationalError:  # no tables yet: a broker never used
        return 0
    finally:
        engine.dispose()
