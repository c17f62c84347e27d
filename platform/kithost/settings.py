"""Configuration: every knob is an environment variable prefixed with ``KITHOST_``."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, computed_field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kithost.kit.keys import Keys, derive_keys
from kithost.kit.limits import Limits
from kithost.kit.origins import origin_of
from kithost.kit.outbound import LOOPBACK, OutboundPolicy


class Environment(StrEnum):
    development = "development"
    production = "production"


class Settings(BaseSettings):
    """Kithost settings. The embedded defaults need no server besides Kithost itself."""

    model_config = SettingsConfigDict(env_prefix="KITHOST_", env_file=".env", extra="ignore")

    env: Environment = Environment.development
    data_dir: Path = Path(".kithost")
    database_url: str | None = None
    migration_database_url: str | None = None
    """Who runs ``kithost migrate`` on PostgreSQL when not ``database_url``'s user: the
    tables' owner. ``database_url``'s user is then the app's role (no superuser, no
    BYPASSRLS, owning nothing, so row-level security binds it), which the migration grants
    reading and writing every table."""
    broker_url: str | None = None
    result_backend: str | None = None
    task_queue: str = "kithost"
    secret_key: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    visitor_url: str | None = None
    """Where visitors' pages load Kithost from (the loader, the framed page, the chat and
    session routes) when not ``public_url``: a host of its own, so that what runs in the
    framed page (ChatKit's script) never runs on the dashboard's origin. The chart sets it
    from ``ingress.visitorHost``."""
    log_level: str = "INFO"
    log_json: bool | None = None
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    outbound_allow: str | None = None
    """CIDRs and host names tenant-chosen URLs may reach besides public addresses
    (``kit.outbound``); unset: loopback, none in production."""
    redis_url: str | None = None
    access_token_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    session_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    session_max_age_hours: int = Field(default=12, ge=1, le=24 * 30)
    """How long a visitor session may be refreshed from its first mint on (self-hosted)."""
    mint_limit_per_client: int = Field(default=60, ge=1)
    """Sessions a client IP may mint per widget and minute."""
    mint_limit_per_user: int = Field(default=30, ge=1)
    """Sessions an end user may mint per widget and minute."""
    dashboard_session_ttl_hours: int = Field(default=12, ge=1, le=24 * 30)
    invitation_ttl_hours: int = Field(default=72, ge=1, le=24 * 30)
    oidc_discovery_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_allow_signup: bool = False
    smtp_url: str | None = None
    smtp_from: str = "Kithost <no-reply@localhost>"
    broker_visibility_timeout_seconds: int = Field(default=3600, ge=1)
    """Redis broker: when a task a killed worker held is delivered again."""
    analytics_rollup_seconds: float = Field(default=60.0, gt=0)
    """How often beat recomputes the rollups of hours that got events."""
    config_wait_seconds: float = Field(default=1.0, gt=0, le=60)
    """How long a visitor's request waits for the database to read a widget's config the
    process holds no copy of; then 503 ``config_unavailable``."""
    events_max_in_flight: int = Field(default=256, ge=1)
    """Event batches an API process may be handing to the broker at once; beyond, 429."""
    frame_domain_key: str = "domain_pk_localhost_dev"
    """OpenAI's domain key for the domain framed pages are served from (``visitor_url``'s,
    else ``public_url``'s)."""
    chatkit_script_url: str = "https://cdn.platform.openai.com/deployments/chatkit/chatkit.js"
    """ChatKit's script, as the framed page loads it."""
    chatkit_script_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    """How long the framed page waits for ChatKit's script before showing its fallback."""
    chat_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    """Largest request body ``POST /v1/chatkit/{pk}`` accepts."""
    chat_attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    """Largest attachment any widget accepts, whatever its ``composer.attachments`` say."""
    max_open_answers: int = Field(default=300, ge=1)
    """Chat answers an API process streams at once; one more is refused before anything is
    written (503 ``server_busy`` with ``Retry-After``). 300: below what one process held in
    ``bench/README.md``'s chat figures (15 s answers at 20 text deltas a second: 312 on
    SQLite, 375 on PostgreSQL on a box adding 10 M numbers in 0.56 s; 250 on one taking
    0.72 s), past which every visitor's first token took seconds. Set it below what ``make
    bench`` finds on your own box."""
    demo_page: bool | None = None
    """Serve ``/demo`` (the demo widget on a small product page); unset: on except in
    production."""
    knowledge_document_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """Largest document a knowledge base takes."""
    knowledge_max_bytes_per_tenant: int = Field(default=1024**3, ge=1024)
    """The most bytes a tenant's knowledge documents hold together, whatever their status
    (an upload past it: 413 ``knowledge_quota_exceeded``)."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body of any other route (413 beyond)."""
    max_header_bytes: int = Field(default=32 * 1024, ge=4096)
    """Largest total size of a request's headers (431 beyond)."""
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long each part of a request body may take to arrive (408 beyond)."""
    chat_attachment_dir: Path | None = None
    """Where attachment bytes are kept; ``attachments`` in the data directory by default."""
    attachment_storage_url: str | None = None
    """Where attachment bytes live: ``file:///path`` (the default: ``chat_attachment_dir``)
    or ``s3://bucket/prefix`` on any S3-compatible service (credentials from the ``AWS_*``
    variables or the pod's identity)."""
    s3_endpoint_url: str | None = None
    """The S3-compatible service's URL (MinIO, Ceph, R2, …); unset: AWS S3."""
    s3_region: str | None = None
    """The bucket's region; unset: ``AWS_REGION`` / ``AWS_DEFAULT_REGION``."""
    trusted_proxies: str = ""
    """Comma-separated addresses or CIDRs of the reverse proxies (ingress controller, load
    balancer) whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` give the client's address and
    scheme; from anyone else these headers are ignored. Empty: trust none. Production refuses
    ``0.0.0.0/0`` and ``::/0``."""
    allowed_hosts: str = "*"
    """Comma-separated host names requests may name in ``Host`` (``*.example.com`` for
    subdomains, ``*`` for any); others get 400 ``invalid_host``. The probes answer only to
    other names (the kubelet calls pods by address): under these, 404."""
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """The port ``kithost serve`` serves Prometheus metrics on, apart from the app (on the
    host it listens on; a scrape sums every process): the public port then answers 404 at
    ``/metrics``. Unset: ``/metrics`` is one of the app's routes."""
    database_pool_size: int = Field(default=5, ge=1, le=100)
    """Connections each process keeps open to PostgreSQL."""
    database_max_overflow: int = Field(default=10, ge=0, le=100)
    """Connections a process may open beyond the pool under a burst (closed when returned)."""
    serve_workers: int = Field(default=1, ge=1, le=64)
    """Processes ``kithost serve`` runs (each with its own database pool)."""
    graceful_shutdown_seconds: int = Field(default=30, ge=1, le=3600)
    """On SIGTERM, how long ``kithost serve`` lets open requests (a streaming chat) finish."""

    @field_validator("attachment_storage_url")
    @classmethod
    def _attachment_storage_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("file", "s3") or (parts.scheme == "s3" and not parts.netloc):
                raise ValueError("use file:///path or s3://bucket/prefix")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        for entry in _items(value):
            try:
                ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
        return value

    @model_validator(mode="after")
    def _production(self) -> Settings:
        """What production refuses: the embedded SQLite database and broker (files of one
        process's data directory, a pod's emptyDir: lost with it and seen by no other
        process), a public URL that is not https, and trusting every address as a proxy."""
        if self.env is Environment.production:
            missing = [
                f"KITHOST_{name.upper()}"
                for name in ("database_url", "broker_url")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"production requires {' and '.join(missing)}")
            if not (self.public_url or "").startswith("https://"):
                # Else cookies lose Secure, and tokens and links name http://localhost.
                raise ValueError("production requires KITHOST_PUBLIC_URL, an https:// URL")
            if not (self.visitor_url or "https://").startswith("https://"):
                raise ValueError("KITHOST_VISITOR_URL must be an https:// URL in production")
            for proxy in self.trusted_proxy_list:
                if ip_network(proxy, strict=False).prefixlen == 0:
                    raise ValueError(
                        f"KITHOST_TRUSTED_PROXIES must not trust every address ({proxy}): "
                        "any client could name its own"
                    )
        return self

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _items(self.trusted_proxies)

    @property
    def allowed_host_list(self) -> list[str]:
        return [host.lower() for host in _items(self.allowed_hosts)]

    @field_validator("outbound_allow")
    @classmethod
    def _outbound_allow(cls, value: str | None) -> str | None:
        if value is not None:
            OutboundPolicy.parse(value)
        return value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def database(self) -> str:
        """The SQLAlchemy async URL; an SQLite file in the data directory by default."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'kithost.db'}"

    @property
    def migration_database(self) -> str:
        """The URL migrations run with: ``migration_database_url``, else ``database``."""
        return self.migration_database_url or self.database

    @computed_field  # type: ignore[prop-decorator]
    @property
    def broker(self) -> str:
        """The Celery broker URL; kombu's SQLAlchemy transport on an SQLite file by default."""
        return self.broker_url or f"sqla+sqlite:///{self.data_dir.resolve() / 'broker.db'}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def results(self) -> str:
        """Where Celery keeps task results, derived from the broker unless given."""
        if self.result_backend:
            return self.result_backend
        if self.broker_url is None:
            return f"db+sqlite:///{self.data_dir.resolve() / 'results.db'}"
        broker = self.broker
        if broker.startswith(("redis://", "rediss://")):
            return broker
        if broker.startswith("sqla+"):
            return "db+" + broker.removeprefix("sqla+")
        return "rpc://"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def base_url(self) -> str:
        """The public URL visitors and tenants reach Kithost at, without a trailing slash."""
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def visitor_base_url(self) -> str:
        """The URL visitors' pages reach Kithost at (``visitor_url``, else ``base_url``)."""
        return (self.visitor_url or self.base_url).rstrip("/")

    @property
    def own_origins(self) -> frozenset[str]:
        """Kithost's own origins: its framed page's requests come from one of them (asked
        on every visitor request: computed once per pair of URLs)."""
        return _own_origins(self.base_url, self.visitor_base_url)

    @property
    def json_logs(self) -> bool:
        return self.env is Environment.production if self.log_json is None else self.log_json

    @property
    def outbound_policy(self) -> OutboundPolicy:
        """What tenant-chosen URLs may reach besides public addresses."""
        allow = self.outbound_allow
        if allow is None:
            allow = "" if self.env is Environment.production else LOOPBACK
        return _outbound_policy(allow)

    @property
    def demo_page_on(self) -> bool:
        return self.env is not Environment.production if self.demo_page is None else self.demo_page

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def attachments_dir(self) -> Path:
        return self.chat_attachment_dir or self.data_dir / "attachments"

    @property
    def limits(self) -> Limits:
        """What every request must keep within (``kit.limits``)."""
        return Limits(
            max_header_bytes=self.max_header_bytes,
            max_body_bytes=self.max_body_bytes,
            max_document_bytes=self.knowledge_document_max_bytes,
            body_timeout_seconds=self.body_timeout_seconds,
        )

    def keys(self) -> Keys:
        """The keys of every purpose (``kit.keys``), derived from the secret keys: those of
        ``KITHOST_SECRET_KEY`` (several: comma-separated, newest first), which production
        must set; the embedded default creates one in the data directory on first use and
        keeps it there (mode 0600)."""
        return derive_keys(tuple(self._secret_keys()))

    def _secret_keys(self) -> list[str]:
        if self.secret_key is not None:
            return [k.strip() for k in self.secret_key.get_secret_value().split(",") if k.strip()]
        if self.env is Environment.production:
            raise RuntimeError("KITHOST_SECRET_KEY must be set in production")
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return [path.read_text().strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@lru_cache
def _outbound_policy(allow: str) -> OutboundPolicy:
    return OutboundPolicy.parse(allow)


@lru_cache(maxsize=8)
def _own_origins(*urls: str) -> frozenset[str]:
    return frozenset(origin_of(url) for url in urls)
