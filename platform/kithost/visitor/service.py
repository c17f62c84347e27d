"""The published configuration of a widget as visitors see it, and who may see it."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.kit.origins import WILDCARD, is_browser_origin, origin_matches
from kithost.models import Placement
from kithost.visitor import repository
from kithost.visitor.schemas import EmbedConfig
from kithost.widgets.config import WidgetConfig
from kithost.widgets.preview import Preview

log = structlog.get_logger(__name__)

PUBLIC_KEY = re.compile(r"pk_[A-Za-z0-9_-]{32}")
"""Every key ``widgets.service.create_widget`` has made (``random_token("pk_")``: ``pk_`` and
24 random bytes, base64url without padding: 32 characters), and nothing else."""


def is_public_key(key: str) -> bool:
    """Whether ``key`` has the shape of a widget's public key: any other string names no
    widget, so a visitor route answers it as an unknown key without a lookup (it would cost
    a query and, in the config cache, an entry as long as the key: 60 KB keys pass the HTTP
    parser). Preview keys (``pv_…``) are not public keys: ``widgets.preview.read`` checks
    their signature, which costs no lookup either."""
    return len(key) == 35 and PUBLIC_KEY.fullmatch(key) is not None


@dataclass(frozen=True)
class AllowedEntry:
    pattern: str
    """A normalised origin or ``scheme://*.domain`` pattern (``kit.origins``)."""
    domain_key: str | None


@dataclass(frozen=True)
class Published:
    """A published widget as every visitor route needs it: who owns it, the config it runs,
    its public part and the origins allowed to show it."""

    tenant_id: uuid.UUID
    widget_id: uuid.UUID
    public_key: str
    version: int
    widget_config: WidgetConfig
    config: dict[str, Any]
    """``widget_config.public()``: what the loader may see."""
    direct: bool
    origins: tuple[AllowedEntry, ...]
    """Most specific first: exact origins, then wildcards, longest domain first."""
    tenant_openai_key: str | None = field(default=None, repr=False)
    """Encrypted; a change of it bumps the revision of every widget of the tenant."""
    widget_model_key: str | None = field(default=None, repr=False)
    """Encrypted; the widget's own key for its agent's ``base_url``."""
    widget_model_key_base_url: str | None = None
    """The endpoint that key was set for (None: the operator's)."""
    widget_tool_secret: str | None = field(default=None, repr=False)
    """Encrypted; signs the calls of the agent's ``http`` tools."""
    preview: bool = False
    """A preview of the draft (``widgets.preview``): nothing it does counts in analytics."""

    def entry_for(self, origin: str) -> AllowedEntry | None:
        """The allowed entry that lets ``origin`` (an ``Origin`` header) show the widget."""
        return next((e for e in self.origins if origin_matches(origin, e.pattern)), None)

    def allows(self, origin: str) -> bool:
        return self.entry_for(origin) is not None


@dataclass(frozen=True)
class Snapshot:
    """What the database said about a public key at one revision of the widget."""

    revision: int | None
    """None: no such widget."""
    published: Published | None
    """None: no such widget, or nothing published yet."""


@dataclass(frozen=True)
class Rendered:
    """The response body for one origin, serialised once, and its strong ETag."""

    body: bytes
    etag: str


async def load(session: AsyncSession, public_key: str) -> Snapshot:
    """The widget's published config and allowed origins, as of the returned revision.

    The widget row (with its revision) is read before the origins: a change committed in
    between raises the revision past the one returned, so the next revalidation reloads.
    A key of another shape than :data:`PUBLIC_KEY` is no widget, found without a query. A
    published config that today's rules refuse (they grew stricter since) is nothing
    published, and an error in the log naming the widget and the fields at fault.
    """
    if not is_public_key(public_key):
        return Snapshot(revision=None, published=None)
    row = await repository.widget_with_published_config(session, public_key)
    if row is None:
        return Snapshot(revision=None, published=None)
    if row.published_version is None or row.config is None:
        return Snapshot(revision=row.revision, published=None)
    try:
        config = WidgetConfig.model_validate(row.config)
    except ValidationError as outdated:
        # Published under rules since made stricter: served as nothing published (404 to
        # visitors), and said in the log; the dashboard shows it, and refuses to publish it
        # again until it is fixed (``widgets.schemas.StoredConfig``).
        log.error(
            "published_config_invalid",
            widget_id=str(row.id),
            version=row.published_version,
            fields=sorted({".".join(map(str, e["loc"])) for e in outdated.errors()}),
        )
        return Snapshot(revision=row.revision, published=None)
    origins = await repository.allowed_origins(session, row.tenant_id, row.id)
    entries = sorted(
        (AllowedEntry(pattern, domain_key) for pattern, domain_key in origins),
        key=lambda e: (WILDCARD in e.pattern, -len(e.pattern), e.pattern),
    )
    published = Published(
        tenant_id=row.tenant_id,
        widget_id=row.id,
        public_key=public_key,
        version=row.published_version,
        widget_config=config,
        config=config.public(),
        direct=config.placement is Placement.direct,
        origins=tuple(entries),
        tenant_openai_key=row.tenant_openai_key,
        widget_model_key=row.widget_model_key,
        widget_model_key_base_url=row.widget_model_key_base_url,
        widget_tool_secret=row.widget_tool_secret,
    )
    return Snapshot(revision=row.revision, published=published)


async def load_preview(
    session: AsyncSession, preview_key: str, preview: Preview
) -> Published | None:
    """The widget's current draft as a preview key serves it: framed (the direct placement
    needs a domain key OpenAI registered for the page), to the preview's origin only."""
    if not is_browser_origin(preview.origin):  # a key made when it came from the Host header
        return None
    row = await repository.widget_draft(session, preview.tenant_id, preview.widget_id)
    if row is None:
        return None
    try:
        draft = WidgetConfig.model_validate(row.draft)
    except ValidationError:  # saved under rules since made stricter: it needs fixing first
        return None
    config = draft.model_copy(update={"placement": Placement.framed})
    return Published(
        tenant_id=preview.tenant_id,
        widget_id=preview.widget_id,
        public_key=preview_key,
        version=row.published_version or 0,
        widget_config=config,
        config=config.public(),
        direct=config.placement is Placement.direct,
        origins=(AllowedEntry(preview.origin, None),),
        tenant_openai_key=row.tenant_openai_key,
        widget_model_key=row.widget_model_key,
        widget_model_key_base_url=row.widget_model_key_base_url,
        widget_tool_secret=row.widget_tool_secret,
        preview=True,
    )


def render(published: Published, entry: AllowedEntry, chatkit_script: str) -> Rendered:
    """The body for a visitor allowed by ``entry``; its ETag is a hash of exactly these bytes."""
    body = EmbedConfig(
        public_key=published.public_key,
        version=published.version,
        config=published.config,
        domain_key=entry.domain_key if published.direct else None,
        chatkit_script_url=chatkit_script,
    ).model_dump_json()
    data = body.encode()
    return Rendered(data, f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"')
