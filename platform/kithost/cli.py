"""The ``kithost`` command: run the services, migrate, seed, administer tenants, rotate keys.

Every admin verb takes ``--json`` for scripts; failures print a reason on stderr and exit
with status 1 (2 for bad usage).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import prometheus_client
import typer
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost import migrate as migrations
from kithost import rls
from kithost.analytics.rollups import service as rollups
from kithost.app import create_app
from kithost.audit import service as audit
from kithost.auth import signing
from kithost.auth.principals import CLI
from kithost.clients.service import create_client, parse_scopes
from kithost.db import Sessionmaker, create_engine, create_sessionmaker, session_scope
from kithost.demo import seed_demo
from kithost.errors import KithostError, invalid_field
from kithost.health import metrics
from kithost.health.endpoints import QueueDepth
from kithost.kit.crypto import SecretBox
from kithost.log import configure_logging
from kithost.secrets.service import reencrypt_all
from kithost.settings import Settings, get_settings
from kithost.supervisor import run_all
from kithost.tenants.service import create_tenant, get_tenant, remove_tenant
from kithost.users.service import create_user, get_or_create_user
from kithost.worker.app import create_celery, restore_unacknowledged
from kithost.worker.enqueue import PendingTasks

T = TypeVar("T")
SCHEMA_REF = re.compile(r'"#/components/schemas/([^"]+)"')

app = typer.Typer(help="Kithost: hosting for OpenAI ChatKit.", no_args_is_help=True)
tenant_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
user_app = typer.Typer(help="Manage dashboard users.", no_args_is_help=True)
client_app = typer.Typer(help="Manage API clients of tenant backends.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage the keys that sign access tokens.", no_args_is_help=True)
secrets_app = typer.Typer(help="Manage the secrets stored encrypted.", no_args_is_help=True)
analytics_app = typer.Typer(help="Maintain analytics rollups.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")
app.add_typer(client_app, name="client")
app.add_typer(keys_app, name="keys")
app.add_typer(secrets_app, name="secrets")
app.add_typer(analytics_app, name="analytics")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def main() -> None:
    # What Kithost writes is its own: databases (and the embedded broker's), attachments,
    # keys and schedules are created 0600 (directories 0700), never readable by other users.
    os.umask(0o077)
    app()


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.json_logs)
    return settings


def _in_session(work: Callable[[AsyncSession], Awaitable[T]], *, as_json: bool) -> T:
    """Run ``work`` in one committed unit of work; domain errors end the command cleanly."""

    async def run(sessionmaker: Sessionmaker) -> T:
        async with session_scope(sessionmaker) as session:
            return await work(session)

    return _with_database(run, as_json=as_json)


def _with_database(work: Callable[[Sessionmaker], Awaitable[T]], *, as_json: bool) -> T:
    """Run ``work`` with a sessionmaker on the configured database; domain errors end the
    command cleanly."""
    settings = _settings()

    async def run() -> T:
        engine = create_engine(settings.database)
        try:
            sessionmaker = create_sessionmaker(engine, PendingTasks(create_celery(settings)))
            return await work(rls.bypassing_sessions(sessionmaker, rls.Bypass.platform))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except KithostError as exc:
        _fail(exc, as_json=as_json)


def _fail(exc: KithostError, *, as_json: bool) -> NoReturn:
    if as_json:
        errors = [e.model_dump() for e in exc.errors or []]
        typer.echo(json.dumps({"code": exc.code, "detail": str(exc), "errors": errors}), err=True)
    else:
        fields = "".join(f"\n  {e.field}: {e.message}" for e in exc.errors or [])
        typer.echo(f"error ({exc.code}): {exc}{fields}", err=True)
    raise typer.Exit(1)


def _emit(data: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data))
        return
    for key, value in data.items():
        if value is not None:
            typer.echo(f"{key}: {value}")


UVICORN_OPTIONS: dict[str, Any] = {
    "http": "httptools",
    "loop": "uvloop",
    "log_config": None,
    # Off: X-Forwarded-* are believed only from KITHOST_TRUSTED_PROXIES (kit/edge.py).
    "proxy_headers": False,
    "server_header": False,
}
"""How ``kithost serve`` runs uvicorn (the benchmarks serve their baselines the same way)."""


GC_THRESHOLDS = (50_000, 20, 100)
"""``kithost serve``'s garbage collector thresholds (Python's: 700, 10, 10). Hundreds of open
chats keep a large heap of live objects, each streamed token allocates, and collections at
the defaults' pace took a large share of the CPU: bench_chat's held streams at 450 (SQLite,
2026-12-06 18:40 UTC, one step each) passed 2 of 3 runs with these (first token p50
73 to 743 ms) and none of 2 with the defaults (p50 1.0 s and 3.4 s). Cyclic garbage lives
longer before it is freed; reference counting frees the rest as before."""


def create_served_app() -> FastAPI:
    """The app as ``kithost serve`` runs it (in each worker process).

    Everything built until now lives as long as the process, so it is frozen out of the
    garbage collector's view: otherwise every full collection scans it, a pause of about
    100 ms under load. Collections come less often, too (:data:`GC_THRESHOLDS`).
    """
    app = create_app()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return app


def _startup_error(exc: Exception) -> str:
    """What stopped the app from starting, on one line, naming no setting's value."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"KITHOST_{str(error['loc'][0]).upper()}: {error['msg']}"
            if error["loc"]
            else error["msg"].removeprefix("Value error, ")
            for error in exc.errors()
        )
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: KITHOST_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: KITHOST_PORT.")] = None,
    workers: Annotated[int | None, typer.Option(help="Default: KITHOST_SERVE_WORKERS.")] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            envvar="KITHOST_ACCESS_LOG",
            help="Log a line per request (costs about a third of the throughput).",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API, the loader and the dashboard (uvicorn)."""
    # Built once here, then thrown away: a configuration error ends the command with one
    # line, where uvicorn's supervisor would start each worker to die, forever.
    try:
        settings = _settings()
        create_app(settings)
    except Exception as exc:
        typer.echo(f"kithost serve: {_startup_error(exc)}", err=True)
        raise typer.Exit(1) from None
    workers = workers or settings.serve_workers
    host = host or settings.host
    if workers > 1:
        # Each process counts in files there; a scrape of any one reports them all.
        metrics.prepare_multiprocess_dir(settings.data_dir / "metrics")
    if settings.metrics_port is not None:
        # Apart from the app's port, so that no proxy in front of the app exposes them.
        queue = QueueDepth(create_celery(settings), settings.task_queue)
        prometheus_client.start_http_server(
            settings.metrics_port, addr=host, registry=metrics.registry(queue)
        )
    uvicorn.run(
        "kithost.cli:create_served_app",
        factory=True,
        host=host,
        port=port or settings.port,
        workers=workers,
        access_log=access_log,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        **UVICORN_OPTIONS,
    )


@app.command()
def openapi(
    tag: Annotated[
        str | None,
        typer.Option(help="Only the operations with this tag, and the schemas they use."),
    ] = None,
) -> None:
    """Print the HTTP API's OpenAPI document (the dashboard's client is generated from it,
    the loader's API types from its `embed` operations)."""
    document = create_app(_settings()).openapi()
    json.dump(
        document if tag is None else _tagged(document, tag), sys.stdout, indent=1, sort_keys=True
    )
    sys.stdout.write("\n")


def _tagged(document: dict[str, Any], tag: str) -> dict[str, Any]:
    """``document`` with the operations tagged ``tag`` only, and the schemas they reach."""
    paths = {
        path: item
        for path, item in document["paths"].items()
        if any(tag in operation.get("tags", ()) for operation in item.values())
    }
    components = document["components"]
    used: set[str] = set()
    unread: list[Any] = [paths]
    while unread:
        for name in set(SCHEMA_REF.findall(json.dumps(unread.pop()))) - used:
            used.add(name)
            unread.append(components["schemas"][name])
    schemas = {name: components["schemas"][name] for name in sorted(used)}
    return {**document, "paths": paths, "components": {**components, "schemas": schemas}}


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            envvar="KITHOST_WORKER_METRICS_PORT",
            help="Serve Prometheus metrics on this port (to count the pool processes' "
            "tasks, set PROMETHEUS_MULTIPROC_DIR to an existing directory).",
        ),
    ] = None,
) -> None:
    """Run a Celery worker on KITHOST_BROKER_URL."""
    settings = _settings()
    metrics.count_worker_tasks()
    if metrics_port:
        prometheus_client.start_http_server(metrics_port, registry=metrics.registry())
    argv = [
        "worker",
        f"--loglevel={settings.log_level}",
        f"--queues={settings.task_queue}",
        f"--hostname={worker_node(settings)}",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    restore_unacknowledged(settings)
    create_celery(settings).worker_main(argv)


def worker_node(settings: Settings) -> str:
    """This machine's worker's Celery node name (the queue's name keeps two deployments on
    one broker apart)."""
    return f"{settings.task_queue}@{socket.gethostname()}"


@app.command("ping-worker")
def ping_worker(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 5.0,
) -> None:
    """Exit 0 when this machine's (this pod's) worker answers a ping over the broker, else 1:
    the worker's liveness probe."""
    settings = _settings()
    node = worker_node(settings)
    celery = create_celery(settings)
    with celery.connection_for_read() as connection:
        broadcasts = "fanout" in connection.transport.implements.exchange_type
    if not broadcasts:
        # Celery's ping is a broadcast: on such a broker no worker ever hears it.
        typer.echo(
            f"kithost ping-worker: the broker ({connection.transport_cls}) carries no "
            "broadcasts, so no worker can answer: set KITHOST_BROKER_URL to Redis or RabbitMQ",
            err=True,
        )
        raise typer.Exit(1)
    replies = celery.control.ping(destination=[node], timeout=timeout) or []
    if not any(node in reply for reply in replies):
        typer.echo(f"{node} did not answer within {timeout} s", err=True)
        raise typer.Exit(1)
    typer.echo(f"{node}: pong")


@app.command()
def beat() -> None:
    """Run the Celery beat scheduler (exactly one per deployment)."""
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # its schedule file lives there
    create_celery(settings).start(["beat", f"--loglevel={settings.log_level}"])


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema to REVISION (default: the newest)."""
    migrations.upgrade(_settings(), revision)


@app.command()
def demo(
    as_json: JsonOption = False,
    new_password: Annotated[
        bool,
        typer.Option(
            help="Give the demo owner a new password (printed once; their dashboard "
            "sign-ins end): the first run's is shown only then."
        ),
    ] = False,
) -> None:
    """Seed the demo tenant, owner and widget unless they exist (prints the password once)."""
    settings = _settings()
    seed = _in_session(lambda s: seed_demo(s, settings, new_password=new_password), as_json=as_json)
    _emit(
        {
            "tenant": seed.tenant,
            "owner_email": seed.owner_email,
            "owner_password": seed.owner_password,
            "widget_public_key": seed.widget_public_key,
            "created": seed.created,
        },
        as_json=as_json,
    )


@app.command()
def run() -> None:
    """Migrate, seed the demo, then run the API, a worker and beat until Ctrl-C."""
    settings = _settings()
    migrations.upgrade(settings)
    seed = _in_session(lambda s: seed_demo(s, settings), as_json=False)
    # The password goes with the URLs, printed last: not above the services' start-up logs.
    raise typer.Exit(run_all(settings, owner_password=seed.owner_password))


@tenant_app.command("create")
def tenant_create(
    slug: Annotated[str, typer.Option(help="URL name, e.g. acme.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    owner_email: Annotated[str, typer.Option(help="Owner; created if new.")],
    as_json: JsonOption = False,
) -> None:
    """Create a tenant and its owner (a new owner's password is printed once)."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        owner = await get_or_create_user(session, CLI, owner_email)
        tenant = await create_tenant(session, CLI, slug=slug, name=name, owner=owner.user)
        return {
            "id": str(tenant.id),
            "slug": tenant.slug,
            "name": tenant.name,
            "owner_email": owner.user.email,
            "owner_password": owner.password,
        }

    _emit(_in_session(work, as_json=as_json), as_json=as_json)


@tenant_app.command("delete")
def tenant_delete(
    slug: Annotated[str, typer.Option(help="URL name of the tenant.")],
    confirm: Annotated[str, typer.Option(help="The slug again, to confirm.")],
    as_json: JsonOption = False,
) -> None:
    """Delete a tenant with everything it holds (its members keep their accounts); it cannot
    be undone. Its files and OpenAI's copies of its knowledge go after, through the worker."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        await remove_tenant(session, CLI, await get_tenant(session, slug), confirm)
        return {"deleted": slug}

    _emit(_in_session(work, as_json=as_json), as_json=as_json)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Login email.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    platform_admin: Annotated[bool, typer.Option(help="Operator of the platform.")] = False,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from stdin instead of generating one.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a dashboard user (a generated password is printed once)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None

    async def work(session: AsyncSession) -> dict[str, Any]:
        new = await create_user(
            session, CLI, email, name=name, password=password, is_platform_admin=platform_admin
        )
        return {
            "id": str(new.user.id),
            "email": new.user.email,
            "is_platform_admin": new.user.is_platform_admin,
            "password": new.password,
        }

    _emit(_in_session(work, as_json=as_json), as_json=as_json)


@client_app.command("create")
def client_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated, e.g. widgets:read,sessions:mint")],
    name: Annotated[str, typer.Option(help="What the client is for.")] = "backend",
    as_json: JsonOption = False,
) -> None:
    """Create an OAuth client for a tenant's backend (the secret is printed once)."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        granted = parse_scopes(scopes.split(","))  # bad input first, before any lookup
        new = await create_client(
            session, CLI, await get_tenant(session, tenant), name=name, scopes=granted
        )
        return {
            "client_id": new.client.client_id,
            "client_secret": new.secret,
            "tenant": tenant,
            "scopes": " ".join(new.client.scopes),
        }

    _emit(_in_session(work, as_json=as_json), as_json=as_json)


@keys_app.command("rotate")
def keys_rotate(
    as_json: JsonOption = False,
    withdraw_previous: Annotated[
        bool,
        typer.Option(
            help="Stop trusting the old keys (a leak): every process refuses their tokens "
            f"within {signing.REFRESH_SECONDS:g} seconds."
        ),
    ] = False,
) -> None:
    """Sign with a new key from now on (every process within a few seconds); the old one
    stays published until its tokens expire."""
    box = SecretBox(_settings().keys())

    async def work(session: AsyncSession) -> dict[str, Any]:
        key = await signing.rotate(session, box)
        withdrawn = await signing.withdraw_retired(session) if withdraw_previous else []
        audit.record(
            session,
            CLI,
            "signing_key.rotated",
            target_type="signing_key",
            target_id=key.kid,
            data={"withdrawn": withdrawn} if withdraw_previous else {},
        )
        published = await signing.published_keys(session)
        return {"kid": key.kid, "published": " ".join(k.kid for k in published)}

    _emit(_in_session(work, as_json=as_json), as_json=as_json)


@secrets_app.command("reencrypt")
def secrets_reencrypt(as_json: JsonOption = False) -> None:
    """Re-encrypt every stored secret with the first key of KITHOST_SECRET_KEY, in one
    transaction; then the other keys may be dropped."""
    box = SecretBox(_settings().keys())
    counts = _in_session(lambda s: reencrypt_all(s, box, CLI), as_json=as_json)
    _emit(counts, as_json=as_json)


UTC_TIME = typer.Option(
    formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], help="UTC, e.g. 2026-11-01."
)


MAX_ROLLUP_RANGE = timedelta(days=366)


@analytics_app.command("rollup")
def analytics_rollup(
    since: Annotated[datetime, UTC_TIME],
    until: Annotated[datetime | None, typer.Option(help="UTC, exclusive; default: now.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant slug; default: every one.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the hourly and daily rollups of [SINCE, UNTIL) from raw events, at most
    366 days at once."""
    start = since.replace(tzinfo=UTC)
    end = until.replace(tzinfo=UTC) if until is not None else datetime.now(UTC)
    if end <= start:
        _fail(invalid_field("until", "--until must be after --since."), as_json=as_json)
    if end - start > MAX_ROLLUP_RANGE:
        # Each hour is recomputed against the database: a typo's century would run for days.
        _fail(
            invalid_field(
                "since",
                f"At most {MAX_ROLLUP_RANGE.days} days at once: split the range.",
            ),
            as_json=as_json,
        )

    async def work(sessionmaker: Sessionmaker) -> dict[str, Any]:
        async with session_scope(sessionmaker) as session:
            if tenant is None:
                tenant_ids = await rollups.tenant_ids(session)
            else:
                tenant_ids = [(await get_tenant(session, tenant)).id]
        hours = rollups.hours_between(start, end)
        with typer.progressbar(
            length=len(hours) * len(tenant_ids), label="Recomputing rollups", file=sys.stderr
        ) as bar:
            done = await rollups.recompute(
                sessionmaker, tenant_ids, start, end, advance=lambda: bar.update(1)
            )
        return {"tenants": len(tenant_ids), "hours": len(hours), "recomputed": done}

    _emit(_with_database(work, as_json=as_json), as_json=as_json)
