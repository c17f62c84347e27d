from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    GetCoreSchemaHandler,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    computed_field,
    field_validator,
)
from pydantic_core import core_schema

from kithost.kit.schemas import Name, Schema
from kithost.models import WidgetMode
from kithost.widgets.agent_import import MAX_SOURCE_BYTES
from kithost.widgets.config import WidgetConfig
from kithost.widgets.redaction import redacted

RawConfig = Annotated[Any, PlainValidator(lambda value: value, json_schema_input_type=WidgetConfig)]
"""A configuration as sent: documented as a ``WidgetConfig``, checked by the service with
``config.parse_config`` (whose errors name the JSON path and the rule)."""


class _AsStored:
    """A stored configuration as today's ``WidgetConfig`` answers it (its defaults filled
    in), or, when today's rules refuse it, as it is; documented as a ``WidgetConfig``."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_wrap_validator_function(
            _as_stored,
            handler.generate_schema(WidgetConfig),
            serialization=core_schema.plain_serializer_function_ser_schema(_answered),
        )


def _as_stored(stored: Any, check: ValidatorFunctionWrapHandler) -> WidgetConfig | Any:
    try:
        return check(stored)
    except ValidationError:
        return stored


def _answered(config: WidgetConfig | Any) -> Any:
    """As reads show it: its tools' URLs without what looks like a credential
    (``widgets.redaction``)."""
    if isinstance(config, WidgetConfig):
        return redacted(config.model_dump(mode="json", by_alias=True))
    return redacted(config)


StoredConfig = Annotated[WidgetConfig | dict[str, Any], _AsStored]
"""A configuration as stored (a draft, a version): answered as today's ``WidgetConfig``
when it still passes, else as it is. One saved before a rule grew stricter is still read;
saving or publishing it is checked (``config.parse_config``) and refused on the field that
no longer passes."""

DomainKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,255}$")]
"""An OpenAI domain key (``domain_pk_…``), registered for an origin in OpenAI's dashboard."""


class Widget(Schema):
    """A widget: its draft configuration and which published version visitors see.

    ``revision`` counts every change (draft, origins, publishing, secrets); it is the
    widget's ETag, which changes need in ``If-Match``."""

    id: uuid.UUID
    name: str
    public_key: str
    config: StoredConfig = Field(validation_alias="draft")
    """The draft: what the next publish freezes."""
    allow_insecure_origins: bool
    published_version: int | None
    revision: int
    created_at: datetime
    updated_at: datetime
    has_identity_secret: bool = Field(validation_alias="identity_secret")
    has_model_key: bool = Field(validation_alias="model_key")
    """Whether the widget has its own model key (``PUT …/model-key``), never the key."""
    has_tool_secret: bool = Field(validation_alias="tool_secret")
    """Whether the widget has a secret signing its ``http`` tools' calls."""
    new_tool_secret: str | None = None
    """The tool secret, only in the answer of the change that made it (the first ``http``
    tool); ``POST …/tool-secret`` makes a new one."""

    @field_validator("has_identity_secret", "has_model_key", "has_tool_secret", mode="before")
    @classmethod
    def _whether_set(cls, secret: str | None) -> bool:
        return secret is not None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def attention(self) -> list[Attention]:
        """What the tenant must act on: ``agent_builder_retired``, a hosted draft (OpenAI shut
        Agent Builder down on 2026-11-30; ``POST …/convert`` makes it self-hosted)."""
        config = self.config
        mode = config.mode if isinstance(config, WidgetConfig) else config.get("mode")
        retired = mode == WidgetMode.hosted
        return [Attention.agent_builder_retired] if retired else []


class Attention(StrEnum):
    agent_builder_retired = "agent_builder_retired"


class NotCarried(Schema):
    setting: str
    instead: str
    """What to do instead."""


class Converted(Schema):
    """The widget with its self-hosted draft (publish to show it), what carried over and
    what did not."""

    widget: Widget
    carried: list[str]
    not_carried: list[NotCarried]


class WidgetCreate(Schema):
    name: Name
    config: RawConfig = Field(default=None, description="The defaults when left out.")
    allow_insecure_origins: bool = Field(
        default=False, description="Allow plain `http://` origins beyond localhost."
    )
    origins: list[Annotated[str, StringConstraints(max_length=255)]] = Field(
        default=[],
        max_length=100,
        description="Allowed origins, exact or `*.` wildcards, e.g. `https://*.example.com`.",
    )


class WidgetUpdate(Schema):
    """The fields to change; those left out (or null) keep their value."""

    name: Name | None = None
    config: dict[str, Any] | None = Field(
        default=None,
        description="A JSON merge patch (RFC 7396) of the draft: objects merge key by key, "
        "`null` resets an entry to its default, anything else replaces. "
        "`PUT …/config` replaces the draft as a whole.",
    )
    allow_insecure_origins: bool | None = Field(
        default=None,
        description="Turning it off is refused while plain `http://` origins beyond "
        "localhost are allowed.",
    )


class VersionSummary(Schema):
    """A published configuration, frozen under its number."""

    number: int
    created_at: datetime
    published_by: uuid.UUID | None = Field(validation_alias="published_by_id")
    """The dashboard user who published it; null for API clients and the CLI."""
    note: str
    """What the publisher said this version changes (may be empty)."""


class Publish(Schema):
    note: str = Field(default="", max_length=500, description="What this version changes.")


class Version(VersionSummary):
    config: StoredConfig


class Origin(Schema):
    """A web origin (or ``*.`` pattern) allowed to show the widget."""

    id: uuid.UUID
    origin: str
    domain_key: str | None
    created_at: datetime
    updated_at: datetime


class OriginCreate(Schema):
    origin: str = Field(
        max_length=255,
        examples=["https://shop.example.com", "https://*.example.com"],
        description="Normalised: lowercase, IDN hosts in punycode, default ports dropped.",
    )
    domain_key: DomainKey | None = None


class OriginUpdate(Schema):
    domain_key: DomainKey | None


class AgentImport(Schema):
    """Agents SDK code as Agent Builder exports it (Python); read, never run."""

    code: str = Field(max_length=MAX_SOURCE_BYTES)


class Skipped(Schema):
    line: int
    what: str
    instead: str
    """What to do instead."""


class ToolChange(Schema):
    """What an import did to one of the widget's tools (``widgets.service.ToolChange``)."""

    id: str
    type: str
    change: Literal["added", "replaced", "unchanged", "removed", "kept"]
    """``kept``: an ``http`` or ``client`` tool, which no export describes."""
    secret: Literal["kept", "removed", "kept_for_published"] | None
    """Its MCP server's secret: ``removed`` with the server; ``kept_for_published`` while
    the published version uses it (removed when a version without it is published); null:
    none is set."""


class AgentImported(Schema):
    """The draft with the imported agent (on a dry run: what it would be), what became of
    the widget's tools, and what the export held that did not carry over."""

    dry_run: bool
    config: StoredConfig
    state_variables: list[str]
    """The workflow's state variables: pass them as page context (``setContext``)."""
    not_carried: list[Skipped]
    tools: list[ToolChange]


class PreviewLink(Schema):
    """A short-lived preview of the draft (``widgets.preview``)."""

    public_key: str
    """Takes the public key's place in every visitor route until ``expires_at``."""
    url: str
    """The preview page (the loader on the draft), to frame from the origin that asked."""
    expires_at: datetime
