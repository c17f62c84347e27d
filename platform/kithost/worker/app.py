"""The Celery application, configured from :class:`kithost.settings.Settings`.

Tasks are declared with ``celery.shared_task`` in each domain's ``tasks.py`` and listed in
:data:`TASK_MODULES`; each process builds its app with :func:`create_celery` (the API in
``create_app``, workers and beat in the CLI).
"""

from __future__ import annotations

from celery import Celery
from kombu.transport import sqlalchemy as kombu_sqlalchemy

from kithost.settings import Settings

TASK_MODULES = ["kithost.analytics.tasks", "kithost.health.tasks", "kithost.invitations.tasks"]

# kombu's SQLAlchemy transport (the embedded broker) polls its table; once a second by
# default. It cannot be set per connection (the option is forwarded to create_engine).
kombu_sqlalchemy.Transport.polling_interval = 0.2


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
        },
    )
    return app
