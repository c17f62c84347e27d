from __future__ import annotations

from pydantic import Field

from kithost.kit.schemas import Schema


class OpenAIKey(Schema):
    """Whether the tenant has an OpenAI API key, and its last four characters; the key
    itself is never shown again."""

    configured: bool
    last4: str | None


class OpenAIKeyUpdate(Schema):
    api_key: str = Field(
        min_length=20,
        max_length=300,
        pattern=r"^[!-~]+$",
        description="Printable ASCII without whitespace, as OpenAI's keys (`sk-…`) are.",
    )


class ModelKey(Schema):
    """Whether the widget has a model key; the key itself is never shown again."""

    has_model_key: bool
    revision: int = Field(description="The widget's revision (its ETag) after the change.")


class ModelKeyUpdate(Schema):
    api_key: str = Field(
        min_length=1,
        max_length=500,
        pattern=r"^[!-~]+$",
        description="The API key of the endpoint the widget's `agent.base_url` names: "
        "printable ASCII without whitespace.",
    )


class IdentitySecret(Schema):
    """A widget's new identity secret: shown this once, Kithost keeps it encrypted."""

    identity_secret: str
    revision: int = Field(description="The widget's revision (its ETag) after the change.")


class ToolSecret(Schema):
    """A widget's new tool secret (signs its ``http`` tools' calls): shown this once."""

    tool_secret: str
    revision: int = Field(description="The widget's revision (its ETag) after the change.")
